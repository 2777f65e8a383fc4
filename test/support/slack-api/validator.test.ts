import { describe, expect, it } from 'vitest';
import { formatIssues, validateBlocks, validateMessage } from './index.js';

const s = (text: string, type: 'mrkdwn' | 'plain_text' = 'mrkdwn') => ({ type: 'section', text: { type, text } });
const btn = (over: Record<string, unknown> = {}) => ({ type: 'button', text: { type: 'plain_text', text: 'Go' }, action_id: 'go', value: 'v', ...over });

function errors(blocks: unknown): string[] {
  return formatIssues(validateBlocks(blocks));
}

describe('Block Kit validator', () => {
  it('accepts a realistic message', () => {
    const blocks = [
      { type: 'header', text: { type: 'plain_text', text: ':red_circle: gw-3', emoji: true } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: 'Checked <!date^1700000000^{date_short_pretty}|2023-11-14>' }] },
      { type: 'section', fields: [{ type: 'mrkdwn', text: '*Entries*\n1 / 2' }, { type: 'plain_text', text: 'x' }] },
      { type: 'divider' },
      s('x'.repeat(3000)),
      {
        type: 'actions',
        block_id: 'plan_actions',
        elements: [
          btn({
            action_id: 'plan_approve',
            style: 'primary',
            confirm: { title: { type: 'plain_text', text: 'Sure?' }, text: { type: 'mrkdwn', text: 'Really' }, confirm: { type: 'plain_text', text: 'Yes' }, deny: { type: 'plain_text', text: 'No' } },
          }),
          btn({ action_id: 'plan_reject', style: 'danger' }),
        ],
      },
      { type: 'rich_text', elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text: 'hi' }, { type: 'user', user_id: 'U1' }] }] },
      { type: 'table', rows: [[{ type: 'raw_text', text: 'key' }, { type: 'raw_text', text: 'value' }]], column_settings: [{ align: 'right' }] },
    ];
    expect(errors(blocks)).toEqual([]);
  });

  it('section text over 3000 characters: Slack\'s message and pointer', () => {
    expect(errors([s('ok'), s('x'.repeat(3001))])).toEqual([
      'failed to match all allowed schemas [json-pointer:/blocks/1/text]',
      'must be less than 3001 characters [json-pointer:/blocks/1/text/text]',
    ]);
  });

  it('counts UTF-16 code units (an emoji is 2)', () => {
    expect(errors([s('😀'.repeat(1500))])).toEqual([]);
    expect(errors([s(`${'😀'.repeat(1500)}x`)])).toContain('must be less than 3001 characters [json-pointer:/blocks/0/text/text]');
  });

  it('more than 50 blocks', () => {
    const blocks = Array.from({ length: 51 }, () => ({ type: 'divider' }));
    expect(errors(blocks)).toEqual(['no more than 50 items allowed [json-pointer:/blocks]']);
    expect(errors(blocks.slice(0, 50))).toEqual([]);
  });

  it('section fields: at most 10, each at most 2000', () => {
    const f = (t: string) => ({ type: 'mrkdwn', text: t });
    expect(errors([{ type: 'section', fields: Array.from({ length: 11 }, () => f('a')) }])).toEqual(['no more than 10 items allowed [json-pointer:/blocks/0/fields]']);
    expect(errors([{ type: 'section', fields: [f('a'), f('b'.repeat(2001))] }])).toContain('must be less than 2001 characters [json-pointer:/blocks/0/fields/1/text]');
    expect(errors([{ type: 'section', fields: [f('b'.repeat(2000))] }])).toEqual([]);
  });

  it('header: plain_text only, at most 150', () => {
    expect(errors([{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }])).toEqual(['must be less than 151 characters [json-pointer:/blocks/0/text/text]']);
    expect(errors([{ type: 'header', text: { type: 'mrkdwn', text: 'h' } }])).toEqual(['must be one of plain_text [json-pointer:/blocks/0/text/type]']);
  });

  it('context: at most 10 elements', () => {
    const el = { type: 'mrkdwn', text: 'c' };
    expect(errors([{ type: 'context', elements: Array.from({ length: 11 }, () => el) }])).toEqual(['no more than 10 items allowed [json-pointer:/blocks/0/elements]']);
  });

  it('actions: at most 25 elements, unique action_ids', () => {
    const many = Array.from({ length: 26 }, (_, i) => btn({ action_id: `a${i}` }));
    expect(errors([{ type: 'actions', elements: many }])).toEqual(['no more than 25 items allowed [json-pointer:/blocks/0/elements]']);
    expect(errors([{ type: 'actions', elements: [btn(), btn()] }])).toEqual(['duplicate action_id: go (first used at /blocks/0/elements/0/action_id) [json-pointer:/blocks/0/elements/1/action_id]']);
    // Across blocks: rejected by default (bot routing), allowed with Slack's documented per-block scope.
    const two = [
      { type: 'actions', elements: [btn()] },
      { type: 'actions', elements: [btn()] },
    ];
    expect(validateBlocks(two)).toHaveLength(1);
    expect(validateBlocks(two, { actionIdScope: 'block' })).toEqual([]);
  });

  it('button limits: text 75, value 2000, action_id 255, style', () => {
    expect(errors([{ type: 'actions', elements: [btn({ text: { type: 'plain_text', text: 'b'.repeat(76) } })] }])).toEqual([
      'must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]',
    ]);
    expect(errors([{ type: 'actions', elements: [btn({ value: 'v'.repeat(2001) })] }])).toEqual(['must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]']);
    expect(errors([{ type: 'actions', elements: [btn({ action_id: 'a'.repeat(256) })] }])).toEqual(['must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]']);
    expect(errors([{ type: 'actions', elements: [btn({ style: 'secondary' })] }])).toEqual(['must be one of primary, danger [json-pointer:/blocks/0/elements/0/style]']);
    expect(errors([{ type: 'actions', elements: [btn({ text: { type: 'mrkdwn', text: '*b*' } })] }])).toEqual(['must be one of plain_text [json-pointer:/blocks/0/elements/0/text/type]']);
  });

  it('confirm dialog limits', () => {
    const confirm = { title: { type: 'plain_text', text: 't'.repeat(101) }, text: { type: 'mrkdwn', text: 'x'.repeat(301) }, confirm: { type: 'plain_text', text: 'y'.repeat(31) }, deny: { type: 'plain_text', text: 'n' } };
    expect(errors([{ type: 'actions', elements: [btn({ confirm })] }])).toEqual([
      'failed to match all allowed schemas [json-pointer:/blocks/0/elements/0/confirm/text]',
      'must be less than 301 characters [json-pointer:/blocks/0/elements/0/confirm/text/text]',
      'must be less than 101 characters [json-pointer:/blocks/0/elements/0/confirm/title/text]',
      'must be less than 31 characters [json-pointer:/blocks/0/elements/0/confirm/confirm/text]',
    ]);
  });

  it('block_id: at most 255 and unique', () => {
    expect(errors([{ type: 'divider', block_id: 'b'.repeat(256) }])).toEqual(['must be less than 256 characters [json-pointer:/blocks/0/block_id]']);
    expect(errors([{ type: 'divider', block_id: 'x' }, { type: 'divider', block_id: 'x' }])).toEqual([
      'duplicate block_id: x (first used at /blocks/0/block_id) [json-pointer:/blocks/1/block_id]',
    ]);
  });

  it('text objects: type and non-empty text', () => {
    expect(errors([s('')])).toEqual(['failed to match all allowed schemas [json-pointer:/blocks/0/text]', 'must be more than 0 characters [json-pointer:/blocks/0/text/text]']);
    expect(errors([{ type: 'section', text: { type: 'markdown', text: 'x' } }])).toContain('must be one of plain_text, mrkdwn [json-pointer:/blocks/0/text/type]');
    expect(errors([{ type: 'section', text: { type: 'mrkdwn', text: 'x', emoji: true } }])).toContain('invalid additional property: emoji [json-pointer:/blocks/0/text]');
    expect(errors([{ type: 'section', text: { type: 'mrkdwn' } }])).toContain('missing required field: text [json-pointer:/blocks/0/text]');
    expect(errors([{ type: 'section' }])).toEqual(['must provide either text or fields [json-pointer:/blocks/0]']);
  });

  it('divider has no text; unknown block types and input blocks are refused', () => {
    expect(errors([{ type: 'divider', text: { type: 'plain_text', text: 'x' } }])).toEqual(['invalid additional property: text [json-pointer:/blocks/0]']);
    expect(errors([{ type: 'sectoin', text: { type: 'plain_text', text: 'x' } }])).toEqual([
      'failed to match all allowed schemas [json-pointer:/blocks/0]',
      'unsupported block type: sectoin [json-pointer:/blocks/0/type]',
    ]);
    expect(errors([{ type: 'input', element: { type: 'plain_text_input' }, label: { type: 'plain_text', text: 'l' } }])).toEqual([
      'input blocks are not supported in messages [json-pointer:/blocks/0/type]',
    ]);
  });

  it('table: at most 100 rows of at most 20 cells', () => {
    const cell = { type: 'raw_text', text: 'c' };
    expect(errors([{ type: 'table', rows: Array.from({ length: 101 }, () => [cell]) }])).toEqual(['no more than 100 items allowed [json-pointer:/blocks/0/rows]']);
    expect(errors([{ type: 'table', rows: [Array.from({ length: 21 }, () => cell)] }])).toEqual(['no more than 20 items allowed [json-pointer:/blocks/0/rows/0]']);
    expect(errors([{ type: 'table', rows: [[{ type: 'raw_text', text: '' }]] }])).toEqual(['must be more than 0 characters [json-pointer:/blocks/0/rows/0/0/text]']);
  });

  it('validateMessage: no_text, msg_too_long, invalid_blocks_format', () => {
    expect(validateMessage({})).toMatchObject({ ok: false, error: 'no_text' });
    expect(validateMessage({ text: '   ', blocks: [] })).toMatchObject({ ok: false, error: 'no_text' });
    expect(validateMessage({ text: 'x'.repeat(40_000) })).toEqual({ ok: true });
    expect(validateMessage({ text: 'x'.repeat(40_001) })).toMatchObject({ ok: false, error: 'msg_too_long' });
    expect(validateMessage({ text: 'x', blocks: '[{"type":' })).toMatchObject({ ok: false, error: 'invalid_blocks_format' });
    expect(validateMessage({ text: 'x', blocks: { type: 'divider' } })).toMatchObject({ ok: false, error: 'invalid_blocks_format' });
    expect(validateMessage({ blocks: JSON.stringify([s('only blocks')]) })).toEqual({ ok: true });
  });
});
