# antragsrouter — multi-stage build: compile (with the toolchain for better-sqlite3), then a slim
# non-root runtime with only production dependencies.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY adapters ./adapters
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# A larger young generation (V8's semi-space, default up to 16 MiB and less under a container memory limit):
# the router allocates many short-lived objects per submission; measured ~3 % more throughput at maximum load
# for ~30 MB more resident memory (BENCHMARKS.md). 64 gained nothing more.
ENV NODE_OPTIONS="--max-semi-space-size=32"
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY mappings ./mappings
COPY resources ./resources
COPY schemas ./schemas
COPY console ./console
COPY examples ./examples
RUN mkdir -p /app/var && chown node:node /app/var
USER node
VOLUME ["/app/var"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start", "--config", "examples/man/antragsrouter.yaml", "--host", "0.0.0.0"]
