/**
 * The control plane's own metrics and traces, through OpenTelemetry: a Prometheus endpoint (served on the admin
 * port at /metrics) and, when an OTLP endpoint is configured, traces of each revision (read -> compile -> snapshot
 * -> publish). Instances are not registered globally, so several control planes can share a process (tests).
 *
 * (`@opentelemetry/sdk-node` sets process-global providers and auto-configures exporters from the environment; the
 * packages it is built from are used directly instead, for the reason above.)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

export interface TelemetryOptions {
  /** OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. No traces when unset. */
  otlpTracesEndpoint?: string;
}

export class Telemetry {
  private readonly exporter = new PrometheusExporter({ preventServerStart: true });
  private readonly meterProvider = new MeterProvider({ readers: [this.exporter] });
  private readonly tracerProvider?: TracerProvider;
  readonly tracer: Tracer;

  private readonly meter = this.meterProvider.getMeter('chancery');
  readonly pushes = this.meter.createCounter('chancery_xds_pushes', { description: 'xDS responses sent, by type' });
  readonly pushBytes = this.meter.createCounter('chancery_xds_push_bytes', { description: 'bytes of xDS responses sent, by type', unit: 'By' });
  readonly acks = this.meter.createCounter('chancery_xds_acks', { description: 'xDS responses ACKed, by type' });
  readonly nacks = this.meter.createCounter('chancery_xds_nacks', { description: 'xDS responses rejected by a proxy (NACK), by type and proxy' });
  readonly ackLatency = this.meter.createHistogram('chancery_xds_push_ack_seconds', {
    description: 'time from sending an xDS response to its ACK or NACK',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
  });
  readonly revisions = this.meter.createCounter('chancery_revisions', { description: 'policy revisions compiled, by status (accepted, rejected)' });
  readonly compileTime = this.meter.createHistogram('chancery_compile_seconds', {
    description: 'time to read, compile and snapshot a revision',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
  });
  readonly convergence = this.meter.createHistogram('chancery_revision_convergence_seconds', {
    description: 'time from accepting a revision until every connected proxy held it',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] },
  });
  readonly streamsRefused = this.meter.createCounter('chancery_xds_streams_refused', { description: 'xDS streams refused, by reason' });

  constructor(o: TelemetryOptions = {}) {
    if (o.otlpTracesEndpoint) {
      this.tracerProvider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: o.otlpTracesEndpoint }) })] });
      this.tracer = this.tracerProvider.getTracer('chancery');
    } else {
      this.tracer = trace.getTracer('chancery'); // no-op unless an application registered a global provider
    }
  }

  /** Gauges read when Prometheus scrapes. */
  observe(name: string, description: string, read: () => { value: number; attributes?: Attributes }[]): void {
    const g = this.meter.createObservableGauge(name, { description });
    g.addCallback((r) => {
      for (const { value, attributes } of read()) r.observe(value, attributes);
    });
  }

  /** Runs `fn` in a span (a no-op span without an OTLP endpoint). */
  async span<T>(name: string, fn: (span: Span) => Promise<T> | T, attributes: Attributes = {}): Promise<T> {
    return this.tracer.startActiveSpan(name, { attributes }, async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err as Error);
        throw err;
      } finally {
        span.end();
      }
    });
  }

  /** Serves the Prometheus text format. */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void {
    this.exporter.getMetricsRequestHandler(req, res);
  }

  async shutdown(): Promise<void> {
    await this.meterProvider.shutdown().catch(() => undefined);
    await this.tracerProvider?.shutdown().catch(() => undefined);
  }
}
