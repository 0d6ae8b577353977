/**
 * The metrics listener: `GET /metrics` in the Prometheus text format, nothing else. Separate from
 * JSON-RPC so that the monitoring namespace can scrape without reaching RPC (and the other way
 * round); never a stack trace, never anything but metrics.
 */
import type { AddressInfo } from "node:net";
import { fastify, LogController } from "fastify";
import type { Logger } from "pino";
import type { NodeMetrics } from "./nodeMetrics.ts";
import type { MetricsOptions } from "./options.ts";

export class MetricsServerError extends Error {
  readonly code: "METRICS_ADDRESS_IN_USE" | "METRICS_LISTEN_FAILED";

  constructor(code: MetricsServerError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MetricsServerError";
    this.code = code;
  }
}

export interface MetricsServer {
  listen(): Promise<{ url: string; port: number }>;
  close(): Promise<void>;
}

export function createMetricsServer(
  opts: Pick<MetricsOptions, "host" | "port">,
  modules: { metrics: NodeMetrics; logger: Logger },
): MetricsServer {
  const app = fastify({
    loggerInstance: modules.logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get("/metrics", async (_request, reply) => {
    const { contentType, body } = await modules.metrics.render();
    return reply.type(contentType).send(body);
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: "not found: metrics are at /metrics" }),
  );
  app.setErrorHandler((err, _request, reply) => {
    modules.logger.warn({ err: (err as Error).message }, "metrics request failed");
    return reply.code(500).send({ error: "metrics could not be collected" });
  });
  return {
    async listen() {
      try {
        await app.listen({ host: opts.host, port: opts.port });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const where = `${opts.host}:${opts.port}`;
        throw new MetricsServerError(
          code === "EADDRINUSE" ? "METRICS_ADDRESS_IN_USE" : "METRICS_LISTEN_FAILED",
          code === "EADDRINUSE"
            ? `cannot listen for metrics on ${where}: address already in use (set metrics.port)`
            : `cannot listen for metrics on ${where}: ${code ?? (err as Error).message}`,
          { cause: err },
        );
      }
      const port = (app.server.address() as AddressInfo).port;
      const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
      return { url: `http://${host}:${port}/metrics`, port };
    },
    close: () => app.close(),
  };
}
