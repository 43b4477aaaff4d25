import { Counter, Histogram, type Registry as MetricsRegistry } from 'prom-client';

/** HTTP request metrics (api.md §Operations), on the shared prom-client registry. */
export interface HttpMetrics {
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
}

/** Creates the metrics once per registry (a second app on the same registry reuses them). */
export function httpMetrics(registry: MetricsRegistry): HttpMetrics {
  const requests =
    (registry.getSingleMetric('latchkey_http_requests_total') as Counter<'method' | 'route' | 'status'> | undefined) ??
    new Counter({
      name: 'latchkey_http_requests_total',
      help: 'HTTP requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric('latchkey_http_request_duration_seconds') as Histogram<'method' | 'route'> | undefined) ??
    new Histogram({
      name: 'latchkey_http_request_duration_seconds',
      help: 'HTTP request duration by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers: [registry],
    });
  return { requests, duration };
}
