# syntax=docker/dockerfile:1
# conntrack-ops: the Slack listener (CMD) and, with another command, the worker
# (docker-compose.yml). Built to JavaScript; the runtime image has dist/ and the
# production dependencies only (no TypeScript, tsx, tests, benchmarks or lab).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY jobs ./jobs
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# /healthz answers 200 while the listener's Redis answers (HTTP and Socket Mode alike; jobs/healthcheck.ts).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["node", "dist/jobs/healthcheck.js"]
CMD ["node", "dist/src/cli/main.js", "start", "--no-worker"]
