/**
 * A Block Kit validator for message surfaces, written from Slack's documented limits.
 * There is no validator on npm and Slack's `blocks.validate` needs the network, so the
 * local Slack API server uses this one to reject what Slack would reject.
 *
 * Where each limit comes from (docs.slack.dev reference pages, cross-checked with the
 * JSDoc in node_modules/@slack/types/dist/block-kit/*.d.ts, which copies those pages):
 *   - blocks per message: 50 (chat.postMessage "blocks" / Block Kit overview)
 *   - section: text 1..3000, fields 1..10 items each 1..2000 (section-block)
 *   - header: text plain_text only, 1..150 (header-block)
 *   - context: 1..10 elements, image or text objects (context-block)
 *   - actions: 1..25 elements (actions-block)
 *   - block_id: <= 255, unique per message (every block page)
 *   - button: text plain_text 1..75, action_id <= 255, value <= 2000, url <= 3000,
 *     style primary|danger, accessibility_label <= 75 (button-element)
 *   - confirmation dialog: title plain_text <= 100, text <= 300, confirm/deny plain_text
 *     <= 30, style primary|danger (confirmation-dialog-object)
 *   - text object: type plain_text|mrkdwn, text 1..3000, emoji only on plain_text,
 *     verbatim only on mrkdwn (text-object)
 *   - image block: alt_text <= 2000, image_url <= 3000, title plain_text <= 2000 (image-block)
 *   - table: rows 1..100, each 1..20 cells (raw_text | raw_number | rich_text),
 *     column_settings <= 20, align left|center|right (table-block)
 *   - markdown block: text <= 12000 (markdown-block)
 *   - option objects (overflow/static_select): text <= 75, value <= 150 (option-object)
 *
 * Two deliberate choices, both stricter than Slack can be proven to be:
 *   - Lengths count UTF-16 code units (JS `.length`). Slack does not document its unit;
 *     code units are >= code points, so whatever passes here passes Slack.
 *   - action_id must be unique within the whole message. Slack's docs only ask for it to
 *     be unique within its containing block, but the bot routes on action_id and two
 *     identical ids in one message are always a bug. Pass `actionIdScope: 'block'` for
 *     the documented rule.
 *
 * Error strings mimic Slack's: "<what> [json-pointer:/blocks/0/text/text]".
 */

export interface BlockKitIssue {
  /** JSON pointer of the offending value, e.g. /blocks/0/text/text */
  pointer: string;
  /** Slack-style message without the pointer, e.g. "must be less than 3001 characters" */
  message: string;
}

export interface ValidateOptions {
  /** Pointer prefix of the blocks array ('/blocks' for messages). */
  pointer?: string;
  /** Maximum blocks (50 in messages; 100 in modals and home tabs). */
  maxBlocks?: number;
  /** Where action_id has to be unique. Default 'message' (stricter than Slack's docs). */
  actionIdScope?: 'message' | 'block';
}

/** Slack's documented limits as the validator knows them (independent of src/slack/blocks/limits.ts on purpose). */
export const SLACK_DOCUMENTED_LIMITS = {
  blocksPerMessage: 50,
  blocksPerModal: 100,
  messageText: 40_000,
  textObject: 3000,
  sectionText: 3000,
  sectionFields: 10,
  sectionFieldText: 2000,
  headerText: 150,
  contextElements: 10,
  actionsElements: 25,
  blockId: 255,
  actionId: 255,
  buttonText: 75,
  buttonValue: 2000,
  buttonUrl: 3000,
  accessibilityLabel: 75,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  imageAltText: 2000,
  imageUrl: 3000,
  imageTitle: 2000,
  tableRows: 100,
  tableCells: 20,
  tableColumnSettings: 20,
  markdownText: 12_000,
  optionText: 75,
  optionValue: 150,
  overflowOptions: 5,
  checkboxOptions: 10,
  selectOptions: 100,
} as const;

const L = SLACK_DOCUMENTED_LIMITS;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Collector {
  readonly issues: BlockKitIssue[] = [];
  add(pointer: string, message: string): void {
    this.issues.push({ pointer, message });
  }
}

/** Format issues the way Slack's `errors` array does. */
export function formatIssues(issues: readonly BlockKitIssue[]): string[] {
  return issues.map((i) => `${i.message} [json-pointer:${i.pointer}]`);
}

/** Format issues the way Slack's `response_metadata.messages` does. */
export function formatIssueMessages(issues: readonly BlockKitIssue[]): string[] {
  return formatIssues(issues).map((m) => `[ERROR] ${m}`);
}

function only(c: Collector, obj: JsonObject, allowed: readonly string[], at: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) c.add(at, `invalid additional property: ${key}`);
  }
}

function requireString(c: Collector, obj: JsonObject, key: string, at: string): string | undefined {
  const v = obj[key];
  if (v === undefined) {
    c.add(at, `missing required field: ${key}`);
    return undefined;
  }
  if (typeof v !== 'string') {
    c.add(`${at}/${key}`, 'must provide a string');
    return undefined;
  }
  return v;
}

function optString(c: Collector, obj: JsonObject, key: string, max: number, at: string, min = 0): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    c.add(`${at}/${key}`, 'must provide a string');
    return undefined;
  }
  if (v.length < min) c.add(`${at}/${key}`, `must be more than ${min - 1} characters`);
  if (v.length > max) c.add(`${at}/${key}`, `must be less than ${max + 1} characters`);
  return v;
}

function optBoolean(c: Collector, obj: JsonObject, key: string, at: string): void {
  const v = obj[key];
  if (v !== undefined && typeof v !== 'boolean') c.add(`${at}/${key}`, 'must provide a boolean');
}

function optEnum(c: Collector, obj: JsonObject, key: string, values: readonly string[], at: string): void {
  const v = obj[key];
  if (v === undefined) return;
  if (typeof v !== 'string') {
    c.add(`${at}/${key}`, 'must provide a string');
    return;
  }
  if (!values.includes(v)) c.add(`${at}/${key}`, `must be one of ${values.join(', ')}`);
}

function requireArray(c: Collector, obj: JsonObject, key: string, min: number, max: number, at: string): unknown[] | undefined {
  const v = obj[key];
  if (v === undefined) {
    c.add(at, `missing required field: ${key}`);
    return undefined;
  }
  if (!Array.isArray(v)) {
    c.add(`${at}/${key}`, 'must provide an array');
    return undefined;
  }
  if (v.length < min) c.add(`${at}/${key}`, `must provide at least ${min} items`);
  if (v.length > max) c.add(`${at}/${key}`, `no more than ${max} items allowed`);
  return v;
}

/**
 * A text object. `kinds` restricts the type (header/button/confirm title: plain_text only);
 * a union position (section text, fields, context) reports Slack's "failed to match all
 * allowed schemas" first, as Slack does.
 */
function textObject(c: Collector, value: unknown, kinds: readonly ('plain_text' | 'mrkdwn')[], max: number, at: string): void {
  const inner = new Collector();
  if (!isObject(value)) {
    inner.add(at, 'must provide an object');
  } else {
    const type = value['type'];
    if (typeof type !== 'string') {
      inner.add(`${at}/type`, 'must provide a string');
    } else if (!(kinds as readonly string[]).includes(type)) {
      inner.add(`${at}/type`, `must be one of ${kinds.join(', ')}`);
    } else {
      only(inner, value, type === 'plain_text' ? ['type', 'text', 'emoji'] : ['type', 'text', 'verbatim'], at);
      const text = requireString(inner, value, 'text', at);
      if (text !== undefined) {
        if (text.length === 0) inner.add(`${at}/text`, 'must be more than 0 characters');
        if (text.length > max) inner.add(`${at}/text`, `must be less than ${max + 1} characters`);
      }
      if (type === 'plain_text') optBoolean(inner, value, 'emoji', at);
      else optBoolean(inner, value, 'verbatim', at);
    }
  }
  if (inner.issues.length > 0) {
    if (kinds.length > 1) c.add(at, 'failed to match all allowed schemas');
    c.issues.push(...inner.issues);
  }
}

function confirmDialog(c: Collector, value: unknown, at: string): void {
  if (!isObject(value)) {
    c.add(at, 'must provide an object');
    return;
  }
  only(c, value, ['title', 'text', 'confirm', 'deny', 'style'], at);
  if (value['text'] === undefined) c.add(at, 'missing required field: text');
  else textObject(c, value['text'], ['plain_text', 'mrkdwn'], L.confirmText, `${at}/text`);
  if (value['title'] !== undefined) textObject(c, value['title'], ['plain_text'], L.confirmTitle, `${at}/title`);
  if (value['confirm'] !== undefined) textObject(c, value['confirm'], ['plain_text'], L.confirmButton, `${at}/confirm`);
  if (value['deny'] !== undefined) textObject(c, value['deny'], ['plain_text'], L.confirmButton, `${at}/deny`);
  optEnum(c, value, 'style', ['primary', 'danger'], at);
}

function optionObject(c: Collector, value: unknown, at: string): void {
  if (!isObject(value)) {
    c.add(at, 'must provide an object');
    return;
  }
  only(c, value, ['text', 'value', 'description', 'url'], at);
  if (value['text'] === undefined) c.add(at, 'missing required field: text');
  else textObject(c, value['text'], ['plain_text', 'mrkdwn'], L.optionText, `${at}/text`);
  const v = requireString(c, value, 'value', at);
  if (v !== undefined && v.length > L.optionValue) c.add(`${at}/value`, `must be less than ${L.optionValue + 1} characters`);
  if (value['description'] !== undefined) textObject(c, value['description'], ['plain_text', 'mrkdwn'], L.optionText, `${at}/description`);
  optString(c, value, 'url', L.buttonUrl, at);
}

const INTERACTIVE_ELEMENTS = new Set([
  'button',
  'overflow',
  'static_select',
  'external_select',
  'users_select',
  'conversations_select',
  'channels_select',
  'multi_static_select',
  'multi_external_select',
  'multi_users_select',
  'multi_conversations_select',
  'multi_channels_select',
  'datepicker',
  'timepicker',
  'datetimepicker',
  'checkboxes',
  'radio_buttons',
  'workflow_button',
]);

function imageElement(c: Collector, value: JsonObject, at: string): void {
  only(c, value, ['type', 'image_url', 'slack_file', 'alt_text'], at);
  requireString(c, value, 'alt_text', at);
  optString(c, value, 'alt_text', L.imageAltText, at);
  if (value['image_url'] === undefined && value['slack_file'] === undefined) c.add(at, 'missing required field: image_url');
  optString(c, value, 'image_url', L.imageUrl, at, 1);
}

/** An interactive element (actions block, section accessory). Returns its action_id when it has one. */
function element(c: Collector, value: unknown, at: string, allowImage: boolean): string | undefined {
  if (!isObject(value)) {
    c.add(at, 'must provide an object');
    return undefined;
  }
  const type = requireString(c, value, 'type', at);
  if (type === undefined) return undefined;
  if (type === 'image' && allowImage) {
    imageElement(c, value, at);
    return undefined;
  }
  if (!INTERACTIVE_ELEMENTS.has(type)) {
    c.add(`${at}/type`, `unsupported element type: ${type}`);
    return undefined;
  }
  const actionId = optString(c, value, 'action_id', L.actionId, at, 1);
  if (value['confirm'] !== undefined) confirmDialog(c, value['confirm'], `${at}/confirm`);
  switch (type) {
    case 'button': {
      only(c, value, ['type', 'text', 'action_id', 'value', 'url', 'style', 'confirm', 'accessibility_label'], at);
      if (value['text'] === undefined) c.add(at, 'missing required field: text');
      else textObject(c, value['text'], ['plain_text'], L.buttonText, `${at}/text`);
      optString(c, value, 'value', L.buttonValue, at);
      optString(c, value, 'url', L.buttonUrl, at, 1);
      optEnum(c, value, 'style', ['primary', 'danger'], at);
      optString(c, value, 'accessibility_label', L.accessibilityLabel, at);
      break;
    }
    case 'overflow': {
      only(c, value, ['type', 'action_id', 'options', 'confirm'], at);
      const options = requireArray(c, value, 'options', 2, L.overflowOptions, at);
      options?.forEach((o, i) => optionObject(c, o, `${at}/options/${i}`));
      break;
    }
    case 'checkboxes': {
      only(c, value, ['type', 'action_id', 'options', 'initial_options', 'confirm', 'focus_on_load'], at);
      const options = requireArray(c, value, 'options', 1, L.checkboxOptions, at);
      options?.forEach((o, i) => optionObject(c, o, `${at}/options/${i}`));
      if (value['initial_options'] !== undefined) {
        const initial = requireArray(c, value, 'initial_options', 1, L.checkboxOptions, at);
        initial?.forEach((o, i) => optionObject(c, o, `${at}/initial_options/${i}`));
      }
      break;
    }
    case 'static_select':
    case 'multi_static_select': {
      if (value['placeholder'] !== undefined) textObject(c, value['placeholder'], ['plain_text'], 150, `${at}/placeholder`);
      const options = value['options'];
      if (options !== undefined) {
        const list = requireArray(c, value, 'options', 1, L.selectOptions, at);
        list?.forEach((o, i) => optionObject(c, o, `${at}/options/${i}`));
      } else if (value['option_groups'] === undefined) {
        c.add(at, 'missing required field: options');
      }
      break;
    }
    default:
      // Other interactive elements are accepted structurally (the bot does not use them).
      if (value['placeholder'] !== undefined) textObject(c, value['placeholder'], ['plain_text'], 150, `${at}/placeholder`);
      break;
  }
  return actionId;
}

function richTextElements(c: Collector, value: unknown, at: string): void {
  if (!Array.isArray(value)) {
    c.add(at, 'must provide an array');
    return;
  }
  value.forEach((el, i) => {
    const here = `${at}/${i}`;
    if (!isObject(el)) {
      c.add(here, 'must provide an object');
      return;
    }
    const type = requireString(c, el, 'type', here);
    switch (type) {
      case 'text':
        requireString(c, el, 'text', here);
        break;
      case 'link':
        requireString(c, el, 'url', here);
        break;
      case 'emoji':
        requireString(c, el, 'name', here);
        break;
      case 'user':
        requireString(c, el, 'user_id', here);
        break;
      case 'channel':
        requireString(c, el, 'channel_id', here);
        break;
      case 'usergroup':
        requireString(c, el, 'usergroup_id', here);
        break;
      case 'broadcast':
        optEnum(c, el, 'range', ['here', 'channel', 'everyone'], here);
        break;
      case 'date':
        if (typeof el['timestamp'] !== 'number') c.add(`${here}/timestamp`, 'must provide a number');
        requireString(c, el, 'format', here);
        break;
      case 'color':
        requireString(c, el, 'value', here);
        break;
      case undefined:
        break;
      default:
        c.add(`${here}/type`, `unsupported rich text element type: ${type}`);
    }
  });
}

function richTextBody(c: Collector, obj: JsonObject, at: string): void {
  const elements = requireArray(c, obj, 'elements', 1, Number.MAX_SAFE_INTEGER, at);
  elements?.forEach((el, i) => {
    const here = `${at}/elements/${i}`;
    if (!isObject(el)) {
      c.add(here, 'must provide an object');
      return;
    }
    const type = requireString(c, el, 'type', here);
    switch (type) {
      case 'rich_text_section':
      case 'rich_text_preformatted':
      case 'rich_text_quote':
        richTextElements(c, el['elements'], `${here}/elements`);
        break;
      case 'rich_text_list': {
        optEnum(c, el, 'style', ['bullet', 'ordered'], here);
        const items = requireArray(c, el, 'elements', 1, Number.MAX_SAFE_INTEGER, here);
        items?.forEach((item, j) => {
          const itemAt = `${here}/elements/${j}`;
          if (!isObject(item) || item['type'] !== 'rich_text_section') {
            c.add(itemAt, 'must be a rich_text_section');
            return;
          }
          richTextElements(c, item['elements'], `${itemAt}/elements`);
        });
        break;
      }
      case undefined:
        break;
      default:
        c.add(`${here}/type`, `unsupported rich text block element: ${type}`);
    }
  });
}

function tableBlock(c: Collector, obj: JsonObject, at: string): void {
  only(c, obj, ['type', 'block_id', 'rows', 'column_settings'], at);
  const rows = requireArray(c, obj, 'rows', 1, L.tableRows, at);
  rows?.forEach((row, r) => {
    const rowAt = `${at}/rows/${r}`;
    if (!Array.isArray(row)) {
      c.add(rowAt, 'must provide an array');
      return;
    }
    if (row.length === 0) c.add(rowAt, 'must provide at least 1 items');
    if (row.length > L.tableCells) c.add(rowAt, `no more than ${L.tableCells} items allowed`);
    row.forEach((cell, k) => {
      const cellAt = `${rowAt}/${k}`;
      if (!isObject(cell)) {
        c.add(cellAt, 'must provide an object');
        return;
      }
      const type = requireString(c, cell, 'type', cellAt);
      if (type === 'raw_text') {
        only(c, cell, ['type', 'text'], cellAt);
        const text = requireString(c, cell, 'text', cellAt);
        if (text !== undefined && text.length === 0) c.add(`${cellAt}/text`, 'must be more than 0 characters');
      } else if (type === 'raw_number') {
        if (typeof cell['number'] !== 'number' && typeof cell['text'] !== 'string') c.add(cellAt, 'missing required field: number');
      } else if (type === 'rich_text') {
        richTextBody(c, cell, cellAt);
      } else if (type !== undefined) {
        c.add(`${cellAt}/type`, 'must be one of raw_text, raw_number, rich_text');
      }
    });
  });
  if (obj['column_settings'] !== undefined) {
    const settings = requireArray(c, obj, 'column_settings', 0, L.tableColumnSettings, at);
    settings?.forEach((s, i) => {
      const sAt = `${at}/column_settings/${i}`;
      if (s === null) return; // Slack allows null to skip a column
      if (!isObject(s)) {
        c.add(sAt, 'must provide an object');
        return;
      }
      only(c, s, ['align', 'is_wrapped'], sAt);
      optEnum(c, s, 'align', ['left', 'center', 'right'], sAt);
      optBoolean(c, s, 'is_wrapped', sAt);
    });
  }
}

function block(c: Collector, value: unknown, at: string, actionIds: Map<string, string>, blockIds: Map<string, string>, scope: 'message' | 'block'): void {
  if (!isObject(value)) {
    c.add(at, 'must provide an object');
    return;
  }
  const type = requireString(c, value, 'type', at);
  const blockId = optString(c, value, 'block_id', L.blockId, at, 1);
  if (blockId !== undefined) {
    const first = blockIds.get(blockId);
    if (first !== undefined) c.add(`${at}/block_id`, `duplicate block_id: ${blockId} (first used at ${first})`);
    else blockIds.set(blockId, `${at}/block_id`);
  }
  const localActionIds = scope === 'block' ? new Map<string, string>() : actionIds;
  const noteActionId = (id: string | undefined, where: string): void => {
    if (id === undefined) return;
    const first = localActionIds.get(id);
    if (first !== undefined) c.add(`${where}/action_id`, `duplicate action_id: ${id} (first used at ${first})`);
    else localActionIds.set(id, `${where}/action_id`);
  };

  switch (type) {
    case 'section': {
      only(c, value, ['type', 'block_id', 'text', 'fields', 'accessory', 'expand'], at);
      if (value['text'] === undefined && value['fields'] === undefined) c.add(at, 'must provide either text or fields');
      if (value['text'] !== undefined) textObject(c, value['text'], ['plain_text', 'mrkdwn'], L.sectionText, `${at}/text`);
      if (value['fields'] !== undefined) {
        const fields = requireArray(c, value, 'fields', 1, L.sectionFields, at);
        fields?.forEach((f, i) => textObject(c, f, ['plain_text', 'mrkdwn'], L.sectionFieldText, `${at}/fields/${i}`));
      }
      if (value['accessory'] !== undefined) noteActionId(element(c, value['accessory'], `${at}/accessory`, true), `${at}/accessory`);
      optBoolean(c, value, 'expand', at);
      break;
    }
    case 'divider':
      only(c, value, ['type', 'block_id'], at);
      break;
    case 'header':
      only(c, value, ['type', 'block_id', 'text'], at);
      if (value['text'] === undefined) c.add(at, 'missing required field: text');
      else textObject(c, value['text'], ['plain_text'], L.headerText, `${at}/text`);
      break;
    case 'context': {
      only(c, value, ['type', 'block_id', 'elements'], at);
      const elements = requireArray(c, value, 'elements', 1, L.contextElements, at);
      elements?.forEach((el, i) => {
        const here = `${at}/elements/${i}`;
        if (isObject(el) && el['type'] === 'image') imageElement(c, el, here);
        else textObject(c, el, ['plain_text', 'mrkdwn'], L.textObject, here);
      });
      break;
    }
    case 'actions': {
      only(c, value, ['type', 'block_id', 'elements'], at);
      const elements = requireArray(c, value, 'elements', 1, L.actionsElements, at);
      elements?.forEach((el, i) => noteActionId(element(c, el, `${at}/elements/${i}`, false), `${at}/elements/${i}`));
      break;
    }
    case 'image':
      only(c, value, ['type', 'block_id', 'image_url', 'slack_file', 'alt_text', 'title'], at);
      requireString(c, value, 'alt_text', at);
      optString(c, value, 'alt_text', L.imageAltText, at);
      if (value['image_url'] === undefined && value['slack_file'] === undefined) c.add(at, 'missing required field: image_url');
      optString(c, value, 'image_url', L.imageUrl, at, 1);
      if (value['title'] !== undefined) textObject(c, value['title'], ['plain_text'], L.imageTitle, `${at}/title`);
      break;
    case 'rich_text':
      only(c, value, ['type', 'block_id', 'elements'], at);
      richTextBody(c, value, at);
      break;
    case 'table':
      tableBlock(c, value, at);
      break;
    case 'markdown': {
      only(c, value, ['type', 'block_id', 'text'], at);
      const text = requireString(c, value, 'text', at);
      if (text !== undefined && text.length > L.markdownText) c.add(`${at}/text`, `must be less than ${L.markdownText + 1} characters`);
      break;
    }
    case 'file':
      only(c, value, ['type', 'block_id', 'external_id', 'source'], at);
      requireString(c, value, 'external_id', at);
      break;
    case 'input':
      // Input blocks belong to modals and home tabs; Slack rejects them in messages.
      c.add(`${at}/type`, 'input blocks are not supported in messages');
      break;
    case undefined:
      break;
    default:
      c.add(at, 'failed to match all allowed schemas');
      c.add(`${at}/type`, `unsupported block type: ${type}`);
  }
}

/**
 * Validate a message's `blocks` value (already JSON-parsed). Returns [] when valid.
 */
export function validateBlocks(blocks: unknown, opts: ValidateOptions = {}): BlockKitIssue[] {
  const at = opts.pointer ?? '/blocks';
  const max = opts.maxBlocks ?? L.blocksPerMessage;
  const c = new Collector();
  if (!Array.isArray(blocks)) {
    c.add(at, 'must provide an array');
    return c.issues;
  }
  if (blocks.length > max) c.add(at, `no more than ${max} items allowed`);
  const actionIds = new Map<string, string>();
  const blockIds = new Map<string, string>();
  blocks.forEach((b, i) => block(c, b, `${at}/${i}`, actionIds, blockIds, opts.actionIdScope ?? 'message'));
  return c.issues;
}

/** Throw a readable error when blocks are invalid (for tests that build blocks directly). */
export function assertValidBlocks(blocks: unknown, opts?: ValidateOptions): void {
  const issues = validateBlocks(blocks, opts);
  if (issues.length > 0) {
    throw new Error(`invalid_blocks:\n  ${formatIssues(issues).slice(0, 20).join('\n  ')}${issues.length > 20 ? `\n  ... ${issues.length - 20} more` : ''}`);
  }
}

export type MessageCheck =
  | { ok: true }
  | { ok: false; error: 'invalid_blocks' | 'invalid_blocks_format' | 'no_text' | 'msg_too_long'; issues: BlockKitIssue[] };

/**
 * Validate a whole message payload the way chat.postMessage / chat.update / response_url
 * do: blocks first, then that there is something to show, then the text length.
 * `blocks` may still be a JSON string (form-encoded requests); it is parsed here.
 */
export function validateMessage(payload: { text?: unknown; blocks?: unknown; attachments?: unknown }, opts: { requireContent?: boolean } = {}): MessageCheck {
  let blocks = payload.blocks;
  if (typeof blocks === 'string') {
    if (blocks.trim() === '') {
      blocks = undefined;
    } else {
      try {
        blocks = JSON.parse(blocks) as Json;
      } catch {
        return { ok: false, error: 'invalid_blocks_format', issues: [{ pointer: '/blocks', message: 'must provide valid JSON' }] };
      }
    }
  }
  if (blocks !== undefined && blocks !== null) {
    if (!Array.isArray(blocks)) {
      return { ok: false, error: 'invalid_blocks_format', issues: [{ pointer: '/blocks', message: 'must provide an array' }] };
    }
    const issues = validateBlocks(blocks);
    if (issues.length > 0) return { ok: false, error: 'invalid_blocks', issues };
  }
  const text = typeof payload.text === 'string' ? payload.text : '';
  const hasBlocks = Array.isArray(blocks) && blocks.length > 0;
  const hasAttachments = payload.attachments !== undefined && payload.attachments !== null && payload.attachments !== '' && payload.attachments !== '[]';
  if ((opts.requireContent ?? true) && text.trim() === '' && !hasBlocks && !hasAttachments) {
    return { ok: false, error: 'no_text', issues: [] };
  }
  if (text.length > L.messageText) return { ok: false, error: 'msg_too_long', issues: [] };
  return { ok: true };
}
