/*
 * gen: a Kubernetes fleet as a Prometheus 2.42 head holds it, computed
 * series by series (see gen.h). The snapshot's bytes are FORMAT.md sections
 * 1 and 4 (FORMAT.md); this file decides what the series are.
 *
 * Layout. Series come grouped by scrape target, as refs are in a real head
 * (Prometheus creates a target's series in exposition order on its first
 * scrape, then up and scrape_*). The fleet repeats a cycle of targets
 * (PATTERN below: nodes, each with a node-exporter, a cAdvisor and a kubelet
 * target; Go, Java and gRPC application pods; kube-state-metrics, CoreDNS,
 * ingress-nginx, Prometheus, etcd and an API server). Every target of a
 * kind exposes the same families, so series i maps to (target, family,
 * label combination) by arithmetic, and whatever differs between targets
 * (addresses, pod names, which handlers an app serves) is a hash of
 * (seed, target).
 *
 * Labels, 5-12 a series, sorted by name: kube-prometheus style target labels
 * (container, endpoint, instance "10.a.b.c:port", job, namespace, pod
 * "<deployment>-<pod-template-hash>-<5 chars>", service, node, metrics_path),
 * then the family's own: cpu/mode, device/fstype/mountpoint, code/handler/
 * method, le (as client_golang prints it: "0.005", "1e-08", "+Inf"),
 * quantile, verb/group/resource/version, grpc_*, ...; cAdvisor series carry
 * their container's cgroup id (100-160 bytes) and image, kube-state-metrics
 * series pod uids, container ids and image digests. About 300 metric names.
 *
 * Values, by the family's kind letter in the catalog (m is its magnitude):
 *   c  integer counter: rate 10^(m+-1)/s, increments floor(rate * interval *
 *      U(0.7,1.3) + U), starting near rate * uptime (uptime 1 h .. 60 d,
 *      log-uniform per target); low rates give long runs of equal values
 *   s  seconds counter in hundredths (node_cpu_seconds_total, process_cpu_...)
 *   f  seconds counter in nanoseconds (container_cpu_usage_seconds_total)
 *   F  float counter summed in binary (a client library's _sum)
 *   g  gauge with 2 decimals, mean-reverting walk (node_load1)
 *   G  gauge at full precision (scrape_duration_seconds, timex offsets)
 *   i  integer gauge that moves at 35% of scrapes (goroutines, threads)
 *   m  bytes gauge in 4 KiB pages that moves at 70% of scrapes
 *   k  constant integer 10^(m+-1); =X the constant X (up, *_info 1, max fds)
 *   T  process start time (moves on restart); C a creation time
 *   n  the scrape time in seconds; u uptime in seconds
 *   S  samples scraped: the target's series count - 5
 *   p  one-hot over the last label (phase="Running" 1, the others 0)
 *   r  resource request/limit: cpu cores or memory bytes
 *   h  histogram: _bucket = floor(count * lognormal CDF(le)), so buckets are
 *      integers cumulative across le and monotonic in time; _sum a float,
 *      _count an integer, all from one stream per histogram
 *   q  summary: quantile gauges (monotonic in the quantile), _sum, _count
 * 3% of targets restart once inside the chunk: their counters, histograms and
 * summaries reset to small values and their start time moves.
 *
 * Periodic snapshots: a series' samples are one stream over scrapes 0, 1, ...
 * (the values above, run on), and 3% of targets restart in each later window
 * of `samples` scrapes too. Chunks are cut every `samples` samples, at scrapes
 * k with (k + phase) % samples == 0, the phase a hash of the series, so that
 * cuts are spread over time as series' creation times spread them in a real
 * head. Snapshot j is taken after samples + j * step scrapes: every series has
 * an open chunk of 1 .. samples samples, and as the stream is computed from
 * scrape 0 a snapshot costs O(samples + j * step) a series.
 *
 * Timestamps: one per target and scrape, start + offset + k * interval; the
 * per-target offset (Prometheus spreads targets over the interval) keeps each
 * scrape cycle inside its interval. 85% of targets are exactly regular
 * (2.42 snaps timestamps within 2 ms of the schedule); the rest are off by
 * 3..25 ms (at most interval/8) at 40% of their scrapes.
 *
 * Tombstones: 30% delete a whole series (the API's default start and end),
 * 70% a range of whole seconds inside the chunk. Exemplars ({trace_id=32 hex
 * digits}) sit on integer counters and histogram buckets, spread evenly over
 * the scrapes at the series' own sample time, in time order, as Prometheus'
 * exemplar ring buffer returns them.
 */
#include "gen.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xor.h"

/* ---- hashing, random numbers, permutations ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ULL

/* What a hash is for, so that hashes of the same numbers do not correlate. */
enum tag {
	TAG_TARGET = 1, TAG_SERIES, TAG_GROUP, TAG_ORDER, TAG_STRIPE, TAG_TOMB, TAG_TOMB_ORDER,
	TAG_EXEMPLAR, TAG_EXEMPLAR_PICK, TAG_JITTER, TAG_NAME, TAG_SLOT, TAG_PICK, TAG_PHASE, TAG_RESTART,
};

static uint64_t hash4(uint64_t seed, enum tag tag, uint64_t a, uint64_t b)
{
	return mix64(mix64(mix64(seed ^ (uint64_t)tag * GOLDEN) ^ a) + b);
}

static uint64_t hash_str(uint64_t seed, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ULL;
	return hash4(seed, TAG_NAME, h, 0);
}

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	r->s += GOLDEN;
	return mix64(r->s);
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }
static double rng_range(struct rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }
static uint64_t rng_below(struct rng *r, uint64_t n) { return n ? rng_next(r) % n : 0; }

/*
 * A keyed bijection of [0, n): a 4-round Feistel network over the smallest
 * even-bit domain holding n, walking the cycle until the result is below n
 * (under 4 steps on average: the domain is less than 4n).
 */
struct perm {
	uint64_t n, mask, key;
	unsigned half;
};

static void perm_init(struct perm *p, uint64_t n, uint64_t key)
{
	unsigned bits = 2;

	while (bits < 64 && (1ULL << bits) < n)
		bits += 2;
	p->n = n;
	p->half = bits / 2;
	p->mask = (1ULL << p->half) - 1;
	p->key = key;
}

static uint64_t perm_apply(const struct perm *p, uint64_t x)
{
	do {
		uint64_t l = x >> p->half, r = x & p->mask;

		for (uint64_t round = 0; round < 4; round++) {
			uint64_t f = mix64((r + round * GOLDEN) ^ p->key) & p->mask;

			x = r;
			r = l ^ f;
			l = x;
		}
		x = l << p->half | r;
	} while (x >= p->n);
	return x;
}

/* ---- the catalog ---- */

/* Histogram bucket bounds or summary quantiles, as exposed; log10 range of
 * the medians of the distributions observed into them. */
struct setspec {
	const char *key, *values;
	double median_lo, median_hi;
};

static const struct setspec set_specs[] = {
	{ "def", "0.005|0.01|0.025|0.05|0.1|0.25|0.5|1|2.5|5|10|+Inf", -2.3, -0.6 },
	{ "api", "0.005|0.025|0.05|0.1|0.2|0.4|0.6|0.8|1|1.25|1.5|2|3|4|5|6|8|10|15|20|30|45|60|+Inf",
	  -1.8, -0.4 },
	{ "etcd", "0.001|0.002|0.004|0.008|0.016|0.032|0.064|0.128|0.256|0.512|1.024|2.048|4.096|8.192|+Inf",
	  -2.7, -1.5 },
	{ "dns", "0.00025|0.0005|0.001|0.002|0.004|0.008|0.016|0.032|0.064|0.128|0.256|0.512|1.024|2.048"
		 "|4.096|8.192|+Inf", -3.3, -2 },
	{ "size", "0|100|200|300|400|511|1023|2047|4095|8291|16000|32000|48000|64000|+Inf", 1.8, 3.2 },
	{ "prom", "0.1|0.2|0.4|1|3|8|20|60|120|+Inf", -2.5, -1 },
	{ "wq", "1e-08|1e-07|1e-06|9.999999999999999e-06|9.999999999999999e-05|0.001|0.01|0.1|1|10|+Inf",
	  -5, -3 },
	{ "goq", "0|0.25|0.5|0.75|1", 0, 0 },
	{ "promq", "0.01|0.05|0.5|0.9|0.99", 0, 0 },
};

/* A label dimension: one or more labels (comma-separated) and their values
 * ('|' between combinations, ',' between the labels' values; an empty value
 * is no label, as in Prometheus). A target uses `pick` consecutive values
 * of the pool (all when 0), starting at a hash of its service. Keys starting
 * with '@' are computed (subjects of cAdvisor and kube-state-metrics). */
struct dimspec {
	const char *key, *labels, *values;
	unsigned pick;
};

#define HANDLERS "/api/v1/orders|/api/v1/orders/{id}|/api/v1/cart|/api/v1/cart/items|/api/v1/users/{id}" \
	"|/api/v1/login|/api/v1/logout|/api/v1/products|/api/v1/products/{id}|/api/v1/search" \
	"|/api/v1/recommendations|/api/v1/payments|/api/v1/payments/{id}/capture|/api/v1/shipments" \
	"|/api/v1/inventory/{sku}|/api/v1/prices|/api/v1/currencies|/api/v1/reviews|/api/v2/orders" \
	"|/api/v2/search|/healthz|/readyz|/graphql|/api/v1/notifications|/api/v1/sessions|/api/v1/tokens" \
	"|/api/v1/accounts/{id}|/api/v1/quotes|/api/v1/ads|/api/v1/checkout"

static const struct dimspec dim_specs[] = {
	{ "@ctr", "", "", 0 }, { "@pod", "", "", 0 }, { "@podinfo", "", "", 0 }, { "@owner", "", "", 0 },
	{ "@podlabels", "", "", 0 }, { "@cinfo", "", "", 0 }, { "@podctr", "", "", 0 }, { "@build", "", "", 0 },
	{ "cpu", "cpu", "0|1|2|3|4|5|6|7", 0 },
	{ "mode", "mode", "idle|iowait|irq|nice|softirq|steal|system|user", 0 },
	{ "gmode", "mode", "nice|user", 0 },
	{ "fs", "device,fstype,mountpoint", "/dev/nvme0n1p1,xfs,/|/dev/nvme0n1p1,xfs,/etc/hosts"
	  "|/dev/nvme0n1p128,vfat,/boot/efi|tmpfs,tmpfs,/run|shm,tmpfs,/dev/shm", 0 },
	{ "netdev", "device", "ens5|eth0|lo", 0 },
	{ "disk", "device", "nvme0n1|nvme1n1", 0 },
	{ "collector", "collector", "arp|bcache|bonding|btrfs|conntrack|cpu|cpufreq|diskstats|edac|entropy"
	  "|filefd|filesystem|hwmon|loadavg|mdadm|meminfo|netclass|netdev|netstat|nfs|nfsd|powersupplyclass"
	  "|pressure|rapl|schedstat|sockstat|softnet|stat|textfile|thermal_zone|time|timex|uname|vmstat|xfs", 0 },
	{ "uname", "machine,release,sysname", "x86_64,5.10.184-175.749.amzn2.x86_64,Linux", 0 },
	{ "nebuild", "branch,goversion,revision,version",
	  "HEAD,go1.19.3,1b48970ffcf5630534fb00bb0687d73c66d1c959,1.5.0", 0 },
	{ "goversion", "version", "go1.19.5|go1.20.1|go1.19.3|go1.18.10|go1.20.2", 1 },
	{ "promcode3", "code", "200|500|503", 0 },
	{ "cadver", "cadvisorVersion,kernelVersion,osVersion",
	  ",5.10.184-175.749.amzn2.x86_64,Amazon Linux 2", 0 },
	{ "ctrstate", "container_state", "running|exited|created|unknown", 0 },
	{ "kwork", "operation_type", "create|sync|update", 0 },
	{ "kubeop", "operation_type", "container_status|create_container|exec_sync|image_status"
	  "|list_containers|list_podsandbox|podsandbox_status|remove_container|start_container|version", 0 },
	{ "resthost", "host", "10.100.0.1:443", 0 },
	{ "restcode", "code,method", "200,GET|200,PATCH|201,POST|404,GET|409,PUT|200,PUT", 0 },
	{ "restverb", "verb", "GET|PATCH|POST|PUT", 0 },
	{ "kbuild", "git_version,go_version,platform", "v1.26.4-eks-0a21954,go1.19.8,linux/amd64", 0 },
	{ "vmstate", "plugin_name,state", "kubernetes.io/configmap,actual_state_of_world"
	  "|kubernetes.io/configmap,desired_state_of_world|kubernetes.io/projected,actual_state_of_world"
	  "|kubernetes.io/projected,desired_state_of_world|kubernetes.io/csi:ebs.csi.aws.com,actual_state_of_world",
	  0 },
	{ "phase", "phase", "Running|Pending|Succeeded|Failed|Unknown", 0 },
	{ "cond", "condition", "true|false|unknown", 0 },
	{ "qos", "qos_class", "Burstable|BestEffort|Guaranteed", 0 },
	{ "res", "resource,unit", "cpu,core|memory,byte", 0 },
	{ "restartpol", "type", "Always", 0 },
	{ "sa", "service_account", "default", 0 },
	{ "apisvc", "name", "v1.|v1.apps|v1.batch|v1beta1.metrics.k8s.io|v1.coordination.k8s.io", 0 },
	{ "component", "component", "apiserver", 0 },
	{ "apicode", "code", "200|201|404|409|422|429|500", 3 },
	{ "verb", "verb", "GET|LIST|WATCH|PATCH|POST|PUT|DELETE", 0 },
	{ "verbdur", "verb", "GET|LIST|PATCH|POST|PUT", 0 },
	{ "resource", "group,resource,version", ",pods,v1|,nodes,v1|apps,deployments,v1|,services,v1"
	  "|,endpoints,v1|,configmaps,v1|,secrets,v1|coordination.k8s.io,leases,v1|events.k8s.io,events,v1"
	  "|apps,replicasets,v1|,namespaces,v1|discovery.k8s.io,endpointslices,v1", 8 },
	{ "resname", "resource", "pods|nodes|deployments.apps|services|endpoints|configmaps|secrets"
	  "|leases.coordination.k8s.io|events|replicasets.apps", 0 },
	{ "inflight", "request_kind", "mutating|readOnly", 0 },
	{ "flow", "flow_schema,priority_level", "exempt,exempt|kube-controller-manager,workload-high"
	  "|kube-scheduler,workload-high|service-accounts,workload-low|global-default,global-default"
	  "|system-nodes,system|probes,exempt|catch-all,catch-all", 0 },
	{ "flowpl", "priority_level", "catch-all|exempt|global-default|leader-election|node-high|system"
	  "|workload-high|workload-low", 0 },
	{ "authres", "result", "success|failure|error", 0 },
	{ "etcdop", "operation,type", "get,*core.Pod|list,*core.Pod|update,*core.Node|get,*coordination.Lease"
	  "|update,*coordination.Lease|create,*core.Event|list,*apps.Deployment|delete,*core.Pod", 0 },
	{ "wq", "name", "APIServiceRegistrationController|AvailableConditionController"
	  "|DynamicCABundle-client-ca-bundle|DynamicServingCertificateController|admission_quota_controller"
	  "|autoregister|cluster_authentication_trust_controller|crdEstablishing"
	  "|kubernetes_api_approval_conformant_condition_controller|open_api_v3_aggregation_controller", 6 },
	{ "peer", "To", "8e9e05c52164694d|91bc3c398fb3c146", 0 },
	{ "grpcetcd", "grpc_method,grpc_service,grpc_type", "Range,etcdserverpb.KV,unary"
	  "|Txn,etcdserverpb.KV,unary|Put,etcdserverpb.KV,unary|Watch,etcdserverpb.Watch,bidi_stream"
	  "|LeaseGrant,etcdserverpb.Lease,unary|LeaseKeepAlive,etcdserverpb.Lease,bidi_stream"
	  "|Status,etcdserverpb.Maintenance,unary|Check,grpc.health.v1.Health,unary", 0 },
	{ "grpccode", "grpc_code", "OK|Canceled|Unavailable|DeadlineExceeded|NotFound|Internal"
	  "|InvalidArgument|PermissionDenied", 3 },
	{ "etcdver", "server_version", "3.5.6", 0 },
	{ "etcdcv", "cluster_version", "3.5", 0 },
	{ "dnsserver", "server,zone", "dns://:53,.", 0 },
	{ "dnsproto", "proto", "udp|tcp", 0 },
	{ "dnstype", "type", "A|AAAA|NS|PTR|SRV|other", 0 },
	{ "rcode", "rcode", "NOERROR|NXDOMAIN|SERVFAIL|REFUSED", 0 },
	{ "cachetype", "type", "success|denial", 0 },
	{ "dnsto", "to", "10.0.0.2:53", 0 },
	{ "coreplugin", "name", "cache|errors|forward|health|kubernetes|loadbalance|loop|prometheus|ready|reload", 0 },
	{ "cdbuild", "goversion,revision,version", "go1.19.4,a9c71a9,1.10.1", 0 },
	{ "promcode", "code,handler", "200,/api/v1/query|200,/api/v1/query_range|200,/api/v1/series"
	  "|200,/api/v1/labels|200,/api/v1/label/:name/values|200,/metrics|200,/-/ready|200,/-/healthy"
	  "|400,/api/v1/query|422,/api/v1/query_range|200,/federate|200,/api/v1/rules|200,/api/v1/alerts"
	  "|200,/api/v1/targets|503,/api/v1/query", 0 },
	{ "promhandler", "handler", "/api/v1/query|/api/v1/query_range|/api/v1/series|/api/v1/labels"
	  "|/metrics|/-/ready|/federate|/api/v1/rules", 0 },
	{ "slice", "slice", "inner_eval|prepare_time|queue_time|result_sort", 0 },
	{ "interval", "interval", "15s|30s|1m", 0 },
	{ "scrapejob", "scrape_job", "serviceMonitor/monitoring/node-exporter/0"
	  "|serviceMonitor/monitoring/kube-state-metrics/0|serviceMonitor/monitoring/kubelet/0"
	  "|serviceMonitor/monitoring/kubelet/1|serviceMonitor/monitoring/coredns/0"
	  "|serviceMonitor/monitoring/kube-apiserver/0|serviceMonitor/monitoring/prometheus-k8s/0"
	  "|podMonitor/monitoring/apps/0", 0 },
	{ "sdconfig", "config,name", "serviceMonitor/monitoring/node-exporter/0,scrape"
	  "|serviceMonitor/monitoring/kubelet/0,scrape|podMonitor/monitoring/apps/0,scrape"
	  "|config-0,notify", 0 },
	{ "alertmanager", "alertmanager", "http://10.96.12.7:9093/api/v2/alerts", 0 },
	{ "pbuild", "branch,goversion,revision,version",
	  "HEAD,go1.19.5,1b48970ffcf5630534fb00bb0687d73c66d1c959,2.42.0", 0 },
	{ "hcode", "code", "200|201|204|400|401|404|500|503", 4 },
	{ "handler", "handler", HANDLERS, 6 },
	{ "uri", "uri", HANDLERS, 6 },
	{ "method", "method", "GET|POST", 0 },
	{ "springstatus", "outcome,status", "SUCCESS,200|SUCCESS,201|CLIENT_ERROR,400|CLIENT_ERROR,404"
	  "|SERVER_ERROR,500", 3 },
	{ "jvmmem", "area,id", "heap,G1 Eden Space|heap,G1 Old Gen|heap,G1 Survivor Space"
	  "|nonheap,CodeHeap 'non-nmethods'|nonheap,CodeHeap 'non-profiled nmethods'"
	  "|nonheap,CodeHeap 'profiled nmethods'|nonheap,Compressed Class Space|nonheap,Metaspace", 0 },
	{ "jvmgc", "action,cause,gc", "end of minor GC,G1 Evacuation Pause,G1 Young Generation"
	  "|end of major GC,G1 Compaction Pause,G1 Old Generation", 0 },
	{ "jvmstate", "state", "blocked|new|runnable|terminated|timed-waiting|waiting", 0 },
	{ "jvmbuf", "id", "direct|mapped|mapped - 'non-volatile memory'", 0 },
	{ "hikari", "pool", "HikariPool-1", 0 },
	{ "loglevel", "level", "debug|error|info|trace|warn", 0 },
	{ "executor", "name", "applicationTaskExecutor|taskScheduler", 0 },
	{ "grpcm", "grpc_method,grpc_service,grpc_type", "GetCart,hipstershop.CartService,unary"
	  "|AddItem,hipstershop.CartService,unary|EmptyCart,hipstershop.CartService,unary"
	  "|ListProducts,hipstershop.ProductCatalogService,unary|GetProduct,hipstershop.ProductCatalogService,unary"
	  "|SearchProducts,hipstershop.ProductCatalogService,unary|GetQuote,hipstershop.ShippingService,unary"
	  "|ShipOrder,hipstershop.ShippingService,unary|Convert,hipstershop.CurrencyService,unary"
	  "|GetSupportedCurrencies,hipstershop.CurrencyService,unary|Charge,hipstershop.PaymentService,unary"
	  "|SendOrderConfirmation,hipstershop.EmailService,unary|PlaceOrder,hipstershop.CheckoutService,unary"
	  "|ListRecommendations,hipstershop.RecommendationService,unary|GetAds,hipstershop.AdService,unary"
	  "|Check,grpc.health.v1.Health,unary|Watch,grpc.health.v1.Health,server_stream"
	  "|ServerReflectionInfo,grpc.reflection.v1alpha.ServerReflection,bidi_stream", 5 },
	{ "ingress", "exported_namespace,ingress", "shop,frontend|shop,checkout|payments,payments-api"
	  "|identity,auth|search,search-api|platform,grafana|platform,argocd|shop,cart", 5 },
	{ "ngstatus", "status", "200|201|301|304|400|404|499|500|502|503", 4 },
	{ "ngconn", "state", "active|reading|waiting|writing", 0 },
	{ "ngbuild", "build,controller_class,release,repository",
	  "b6c2b4a5,k8s.io/ingress-nginx,v1.7.0,https://github.com/kubernetes/ingress-nginx", 0 },
	{ "nghost", "host", "shop.example.com|api.example.com|auth.example.com|grafana.example.com", 0 },
	{ "appcache", "cache,result", "local,hit|local,miss|redis,hit|redis,miss", 0 },
	{ "dbname", "db_name", "orders|users|inventory|payments", 1 },
};

/* A metric family: name, value kind (see the top of the file), dimensions. */
struct famspec {
	const char *name, *kind, *dims;
};

static const struct famspec scrape_fams[] = {
	{ "up", "=1", "" },
	{ "scrape_duration_seconds", "G-2", "" },
	{ "scrape_samples_scraped", "S", "" },
	{ "scrape_samples_post_metric_relabeling", "S", "" },
	{ "scrape_series_added", "=0", "" },
	{ NULL, NULL, NULL },
};
#define SCRAPE_SERIES 5

static const struct famspec go_fams[] = {
	{ "go_gc_duration_seconds", "q-4:goq", "" },
	{ "go_goroutines", "i2", "" },
	{ "go_info", "=1", "goversion" },
	{ "go_memstats_alloc_bytes", "m7", "" },
	{ "go_memstats_alloc_bytes_total", "c5", "" },
	{ "go_memstats_buck_hash_sys_bytes", "k6", "" },
	{ "go_memstats_frees_total", "c3", "" },
	{ "go_memstats_gc_sys_bytes", "m7", "" },
	{ "go_memstats_heap_alloc_bytes", "m7", "" },
	{ "go_memstats_heap_idle_bytes", "m7", "" },
	{ "go_memstats_heap_inuse_bytes", "m7", "" },
	{ "go_memstats_heap_objects", "i5", "" },
	{ "go_memstats_heap_released_bytes", "m6", "" },
	{ "go_memstats_heap_sys_bytes", "m7", "" },
	{ "go_memstats_last_gc_time_seconds", "n", "" },
	{ "go_memstats_lookups_total", "=0", "" },
	{ "go_memstats_mallocs_total", "c3", "" },
	{ "go_memstats_mcache_inuse_bytes", "k4", "" },
	{ "go_memstats_mcache_sys_bytes", "k4", "" },
	{ "go_memstats_mspan_inuse_bytes", "m5", "" },
	{ "go_memstats_mspan_sys_bytes", "m5", "" },
	{ "go_memstats_next_gc_bytes", "m7", "" },
	{ "go_memstats_other_sys_bytes", "m6", "" },
	{ "go_memstats_stack_inuse_bytes", "m6", "" },
	{ "go_memstats_stack_sys_bytes", "m6", "" },
	{ "go_memstats_sys_bytes", "m7", "" },
	{ "go_threads", "i1", "" },
	{ "process_cpu_seconds_total", "s-2", "" },
	{ "process_max_fds", "=1048576", "" },
	{ "process_open_fds", "i1", "" },
	{ "process_resident_memory_bytes", "m8", "" },
	{ "process_start_time_seconds", "T", "" },
	{ "process_virtual_memory_bytes", "m9", "" },
	{ "process_virtual_memory_max_bytes", "=1.8446744073709552e+19", "" },
	{ NULL, NULL, NULL },
};

static const struct famspec node_fams[] = {
	{ "node_boot_time_seconds", "T", "" },
	{ "node_context_switches_total", "c4", "" },
	{ "node_cpu_guest_seconds_total", "=0", "cpu gmode" },
	{ "node_cpu_seconds_total", "s-1", "cpu mode" },
	{ "node_disk_io_now", "i0", "disk" },
	{ "node_disk_io_time_seconds_total", "s-2", "disk" },
	{ "node_disk_read_bytes_total", "c4", "disk" },
	{ "node_disk_read_time_seconds_total", "s-3", "disk" },
	{ "node_disk_reads_completed_total", "c0", "disk" },
	{ "node_disk_write_time_seconds_total", "s-2", "disk" },
	{ "node_disk_writes_completed_total", "c1", "disk" },
	{ "node_disk_written_bytes_total", "c5", "disk" },
	{ "node_entropy_available_bits", "i3", "" },
	{ "node_exporter_build_info", "=1", "nebuild" },
	{ "node_filefd_allocated", "i3", "" },
	{ "node_filefd_maximum", "=9.223372036854776e+18", "" },
	{ "node_filesystem_avail_bytes", "m10", "fs" },
	{ "node_filesystem_device_error", "=0", "fs" },
	{ "node_filesystem_files", "k6", "fs" },
	{ "node_filesystem_files_free", "i6", "fs" },
	{ "node_filesystem_free_bytes", "m10", "fs" },
	{ "node_filesystem_readonly", "=0", "fs" },
	{ "node_filesystem_size_bytes", "k10", "fs" },
	{ "node_forks_total", "c1", "" },
	{ "node_intr_total", "c4", "" },
	{ "node_load1", "g0", "" },
	{ "node_load15", "g0", "" },
	{ "node_load5", "g0", "" },
	{ "node_memory_Active_anon_bytes", "m9", "" },
	{ "node_memory_Active_bytes", "m9", "" },
	{ "node_memory_Active_file_bytes", "m9", "" },
	{ "node_memory_AnonHugePages_bytes", "m8", "" },
	{ "node_memory_AnonPages_bytes", "m9", "" },
	{ "node_memory_Buffers_bytes", "m7", "" },
	{ "node_memory_Cached_bytes", "m9", "" },
	{ "node_memory_CommitLimit_bytes", "k10", "" },
	{ "node_memory_Committed_AS_bytes", "m10", "" },
	{ "node_memory_Dirty_bytes", "m5", "" },
	{ "node_memory_HugePages_Total", "=0", "" },
	{ "node_memory_Hugepagesize_bytes", "=2097152", "" },
	{ "node_memory_Inactive_bytes", "m9", "" },
	{ "node_memory_Mapped_bytes", "m8", "" },
	{ "node_memory_MemAvailable_bytes", "m10", "" },
	{ "node_memory_MemFree_bytes", "m9", "" },
	{ "node_memory_MemTotal_bytes", "k10", "" },
	{ "node_memory_PageTables_bytes", "m7", "" },
	{ "node_memory_SReclaimable_bytes", "m8", "" },
	{ "node_memory_SUnreclaim_bytes", "m8", "" },
	{ "node_memory_Shmem_bytes", "m7", "" },
	{ "node_memory_Slab_bytes", "m8", "" },
	{ "node_memory_SwapFree_bytes", "=0", "" },
	{ "node_memory_SwapTotal_bytes", "=0", "" },
	{ "node_memory_VmallocUsed_bytes", "m7", "" },
	{ "node_memory_Writeback_bytes", "=0", "" },
	{ "node_netstat_Icmp_InMsgs", "c0", "" },
	{ "node_netstat_TcpExt_ListenDrops", "=0", "" },
	{ "node_netstat_TcpExt_ListenOverflows", "=0", "" },
	{ "node_netstat_Tcp_ActiveOpens", "c1", "" },
	{ "node_netstat_Tcp_CurrEstab", "i2", "" },
	{ "node_netstat_Tcp_InErrs", "c-3", "" },
	{ "node_netstat_Tcp_PassiveOpens", "c1", "" },
	{ "node_netstat_Tcp_RetransSegs", "c0", "" },
	{ "node_netstat_Udp_InDatagrams", "c1", "" },
	{ "node_netstat_Udp_OutDatagrams", "c1", "" },
	{ "node_network_carrier", "=1", "netdev" },
	{ "node_network_mtu_bytes", "=9001", "netdev" },
	{ "node_network_receive_bytes_total", "c5", "netdev" },
	{ "node_network_receive_drop_total", "c-3", "netdev" },
	{ "node_network_receive_errs_total", "=0", "netdev" },
	{ "node_network_receive_packets_total", "c2", "netdev" },
	{ "node_network_transmit_bytes_total", "c5", "netdev" },
	{ "node_network_transmit_drop_total", "=0", "netdev" },
	{ "node_network_transmit_errs_total", "=0", "netdev" },
	{ "node_network_transmit_packets_total", "c2", "netdev" },
	{ "node_network_up", "=1", "netdev" },
	{ "node_nf_conntrack_entries", "i4", "" },
	{ "node_nf_conntrack_entries_limit", "=262144", "" },
	{ "node_pressure_cpu_waiting_seconds_total", "f-2", "" },
	{ "node_pressure_io_stalled_seconds_total", "f-3", "" },
	{ "node_pressure_io_waiting_seconds_total", "f-3", "" },
	{ "node_pressure_memory_stalled_seconds_total", "f-5", "" },
	{ "node_pressure_memory_waiting_seconds_total", "f-5", "" },
	{ "node_procs_blocked", "i0", "" },
	{ "node_procs_running", "i0", "" },
	{ "node_schedstat_running_seconds_total", "f-1", "cpu" },
	{ "node_schedstat_timeslices_total", "c3", "cpu" },
	{ "node_schedstat_waiting_seconds_total", "f-2", "cpu" },
	{ "node_scrape_collector_duration_seconds", "G-3", "collector" },
	{ "node_scrape_collector_success", "=1", "collector" },
	{ "node_sockstat_TCP_alloc", "i2", "" },
	{ "node_sockstat_TCP_inuse", "i2", "" },
	{ "node_sockstat_TCP_tw", "i2", "" },
	{ "node_sockstat_UDP_inuse", "i1", "" },
	{ "node_sockstat_sockets_used", "i3", "" },
	{ "node_textfile_scrape_error", "=0", "" },
	{ "node_time_seconds", "n", "" },
	{ "node_timex_estimated_error_seconds", "G-4", "" },
	{ "node_timex_maxerror_seconds", "G-1", "" },
	{ "node_timex_offset_seconds", "G-6", "" },
	{ "node_timex_sync_status", "=1", "" },
	{ "node_uname_info", "=1", "uname" },
	{ "node_vmstat_oom_kill", "=0", "" },
	{ "node_vmstat_pgfault", "c4", "" },
	{ "node_vmstat_pgmajfault", "c0", "" },
	{ "node_vmstat_pgpgin", "c3", "" },
	{ "node_vmstat_pgpgout", "c4", "" },
	{ "node_vmstat_pswpin", "=0", "" },
	{ "node_vmstat_pswpout", "=0", "" },
	{ "promhttp_metric_handler_requests_in_flight", "=1", "" },
	{ "promhttp_metric_handler_requests_total", "c-2", "promcode3" },
	{ NULL, NULL, NULL },
};

static const struct famspec cadvisor_fams[] = {
	{ "cadvisor_version_info", "=1", "cadver" },
	{ "container_cpu_cfs_periods_total", "c1", "@ctr" },
	{ "container_cpu_cfs_throttled_periods_total", "c-1", "@ctr" },
	{ "container_cpu_cfs_throttled_seconds_total", "f-2", "@ctr" },
	{ "container_cpu_system_seconds_total", "f-2", "@ctr" },
	{ "container_cpu_usage_seconds_total", "f-1", "@ctr" },
	{ "container_cpu_user_seconds_total", "f-1", "@ctr" },
	{ "container_file_descriptors", "i2", "@ctr" },
	{ "container_fs_reads_bytes_total", "c3", "@ctr" },
	{ "container_fs_writes_bytes_total", "c4", "@ctr" },
	{ "container_last_seen", "n", "@ctr" },
	{ "container_memory_cache", "m7", "@ctr" },
	{ "container_memory_failcnt", "=0", "@ctr" },
	{ "container_memory_mapped_file", "m6", "@ctr" },
	{ "container_memory_max_usage_bytes", "m8", "@ctr" },
	{ "container_memory_rss", "m8", "@ctr" },
	{ "container_memory_swap", "=0", "@ctr" },
	{ "container_memory_usage_bytes", "m8", "@ctr" },
	{ "container_memory_working_set_bytes", "m8", "@ctr" },
	{ "container_network_receive_bytes_total", "c4", "@ctr" },
	{ "container_network_receive_packets_total", "c1", "@ctr" },
	{ "container_network_transmit_bytes_total", "c4", "@ctr" },
	{ "container_network_transmit_packets_total", "c1", "@ctr" },
	{ "container_oom_events_total", "=0", "@ctr" },
	{ "container_processes", "i0", "@ctr" },
	{ "container_sockets", "i1", "@ctr" },
	{ "container_spec_cpu_period", "=100000", "@ctr" },
	{ "container_spec_cpu_quota", "k5", "@ctr" },
	{ "container_spec_cpu_shares", "k2", "@ctr" },
	{ "container_spec_memory_limit_bytes", "k9", "@ctr" },
	{ "container_start_time_seconds", "C", "@ctr" },
	{ "container_threads", "i1", "@ctr" },
	{ "machine_cpu_cores", "=8", "" },
	{ "machine_memory_bytes", "=33254252544", "" },
	{ NULL, NULL, NULL },
};

static const struct famspec kubelet_fams[] = {
	{ "kubelet_certificate_manager_client_ttl_seconds", "k7", "" },
	{ "kubelet_node_name", "=1", "" },
	{ "kubelet_pleg_relist_duration_seconds", "h0:def", "" },
	{ "kubelet_pod_start_duration_seconds", "h-2:def", "" },
	{ "kubelet_pod_worker_duration_seconds", "h-1:def", "kwork" },
	{ "kubelet_running_containers", "i1", "ctrstate" },
	{ "kubelet_running_pods", "i1", "" },
	{ "kubelet_runtime_operations_duration_seconds", "h-1:def", "kubeop" },
	{ "kubelet_runtime_operations_total", "c-1", "kubeop" },
	{ "kubernetes_build_info", "=1", "kbuild" },
	{ "rest_client_request_duration_seconds", "h-1:def", "resthost restverb" },
	{ "rest_client_requests_total", "c-1", "resthost restcode" },
	{ "volume_manager_total_volumes", "i1", "vmstate" },
	{ NULL, NULL, NULL },
};

static const struct famspec ksm_fams[] = {
	{ "kube_pod_container_info", "=1", "@pod @cinfo" },
	{ "kube_pod_container_resource_limits", "r", "@pod @podctr res" },
	{ "kube_pod_container_resource_requests", "r", "@pod @podctr res" },
	{ "kube_pod_container_state_started", "C", "@pod @podctr" },
	{ "kube_pod_container_status_ready", "=1", "@pod @podctr" },
	{ "kube_pod_container_status_restarts_total", "c-5", "@pod @podctr" },
	{ "kube_pod_container_status_running", "=1", "@pod @podctr" },
	{ "kube_pod_container_status_terminated", "=0", "@pod @podctr" },
	{ "kube_pod_container_status_waiting", "=0", "@pod @podctr" },
	{ "kube_pod_created", "C", "@pod" },
	{ "kube_pod_info", "=1", "@pod @podinfo" },
	{ "kube_pod_labels", "=1", "@pod @podlabels" },
	{ "kube_pod_owner", "=1", "@pod @owner" },
	{ "kube_pod_restart_policy", "=1", "@pod restartpol" },
	{ "kube_pod_service_account", "=1", "@pod sa" },
	{ "kube_pod_start_time", "C", "@pod" },
	{ "kube_pod_status_phase", "p", "@pod phase" },
	{ "kube_pod_status_qos_class", "p", "@pod qos" },
	{ "kube_pod_status_ready", "p", "@pod cond" },
	{ "kube_pod_status_scheduled", "p", "@pod cond" },
	{ NULL, NULL, NULL },
};

static const struct famspec apiserver_fams[] = {
	{ "aggregator_unavailable_apiservice", "=0", "apisvc" },
	{ "apiserver_audit_event_total", "c1", "" },
	{ "apiserver_current_inflight_requests", "i1", "inflight" },
	{ "apiserver_flowcontrol_current_executing_requests", "i0", "flow" },
	{ "apiserver_flowcontrol_request_concurrency_limit", "k2", "flowpl" },
	{ "apiserver_request_duration_seconds", "h0:api", "component verbdur resource" },
	{ "apiserver_request_total", "c0", "component apicode verb resource" },
	{ "apiserver_storage_objects", "i3", "resname" },
	{ "apiserver_tls_handshake_errors_total", "c-2", "" },
	{ "authentication_attempts", "c0", "authres" },
	{ "etcd_db_total_size_in_bytes", "m8", "" },
	{ "etcd_request_duration_seconds", "h0:etcd", "etcdop" },
	{ "rest_client_requests_total", "c-1", "resthost restcode" },
	{ "workqueue_adds_total", "c0", "wq" },
	{ "workqueue_depth", "i0", "wq" },
	{ "workqueue_queue_duration_seconds", "h0:wq", "wq" },
	{ "workqueue_retries_total", "c-2", "wq" },
	{ "workqueue_work_duration_seconds", "h0:wq", "wq" },
	{ NULL, NULL, NULL },
};

static const struct famspec etcd_fams[] = {
	{ "etcd_cluster_version", "=1", "etcdcv" },
	{ "etcd_debugging_mvcc_keys_total", "i4", "" },
	{ "etcd_disk_backend_commit_duration_seconds", "h-1:etcd", "" },
	{ "etcd_disk_wal_fsync_duration_seconds", "h1:etcd", "" },
	{ "etcd_mvcc_db_total_size_in_bytes", "m8", "" },
	{ "etcd_mvcc_db_total_size_in_use_in_bytes", "m8", "" },
	{ "etcd_network_peer_received_bytes_total", "c4", "peer" },
	{ "etcd_network_peer_round_trip_time_seconds", "h-1:etcd", "peer" },
	{ "etcd_network_peer_sent_bytes_total", "c4", "peer" },
	{ "etcd_server_has_leader", "=1", "" },
	{ "etcd_server_is_leader", "=0", "" },
	{ "etcd_server_leader_changes_seen_total", "k0", "" },
	{ "etcd_server_proposals_applied_total", "c1", "" },
	{ "etcd_server_proposals_committed_total", "c1", "" },
	{ "etcd_server_proposals_failed_total", "=0", "" },
	{ "etcd_server_proposals_pending", "i0", "" },
	{ "etcd_server_version", "=1", "etcdver" },
	{ "grpc_server_handled_total", "c0", "grpcetcd grpccode" },
	{ "grpc_server_msg_received_total", "c0", "grpcetcd" },
	{ "grpc_server_msg_sent_total", "c0", "grpcetcd" },
	{ "grpc_server_started_total", "c0", "grpcetcd" },
	{ NULL, NULL, NULL },
};

static const struct famspec coredns_fams[] = {
	{ "coredns_build_info", "=1", "cdbuild" },
	{ "coredns_cache_entries", "i3", "dnsserver cachetype" },
	{ "coredns_cache_hits_total", "c1", "dnsserver cachetype" },
	{ "coredns_cache_misses_total", "c0", "dnsserver" },
	{ "coredns_dns_request_duration_seconds", "h1:dns", "dnsserver dnstype" },
	{ "coredns_dns_request_size_bytes", "h1:size", "dnsserver dnsproto" },
	{ "coredns_dns_requests_total", "c1", "dnsserver dnsproto dnstype" },
	{ "coredns_dns_response_size_bytes", "h1:size", "dnsserver dnsproto" },
	{ "coredns_dns_responses_total", "c1", "dnsserver rcode" },
	{ "coredns_forward_healthcheck_broken_total", "=0", "" },
	{ "coredns_forward_requests_total", "c1", "dnsto" },
	{ "coredns_forward_responses_total", "c1", "dnsto rcode" },
	{ "coredns_panics_total", "=0", "" },
	{ "coredns_plugin_enabled", "=1", "dnsserver coreplugin" },
	{ "coredns_reload_failed_total", "=0", "" },
	{ NULL, NULL, NULL },
};

static const struct famspec prom_fams[] = {
	{ "prometheus_build_info", "=1", "pbuild" },
	{ "prometheus_config_last_reload_success_timestamp_seconds", "T", "" },
	{ "prometheus_config_last_reload_successful", "=1", "" },
	{ "prometheus_engine_queries", "i0", "" },
	{ "prometheus_engine_query_duration_seconds", "q-3:promq", "slice" },
	{ "prometheus_http_request_duration_seconds", "h-2:prom", "promhandler" },
	{ "prometheus_http_requests_total", "c-1", "promcode" },
	{ "prometheus_notifications_sent_total", "c-2", "alertmanager" },
	{ "prometheus_ready", "=1", "" },
	{ "prometheus_rule_evaluation_duration_seconds", "q-3:promq", "" },
	{ "prometheus_rule_group_duration_seconds", "q-2:promq", "" },
	{ "prometheus_sd_discovered_targets", "i2", "sdconfig" },
	{ "prometheus_target_interval_length_seconds", "q1:promq", "interval" },
	{ "prometheus_target_scrape_pool_targets", "i1", "scrapejob" },
	{ "prometheus_target_scrapes_exceeded_sample_limit_total", "=0", "" },
	{ "prometheus_tsdb_blocks_loaded", "i1", "" },
	{ "prometheus_tsdb_compactions_total", "c-3", "" },
	{ "prometheus_tsdb_head_chunks", "i6", "" },
	{ "prometheus_tsdb_head_samples_appended_total", "c5", "" },
	{ "prometheus_tsdb_head_series", "i6", "" },
	{ "prometheus_tsdb_head_series_created_total", "c0", "" },
	{ "prometheus_tsdb_head_series_removed_total", "c0", "" },
	{ "prometheus_tsdb_storage_blocks_bytes", "m10", "" },
	{ "prometheus_tsdb_symbol_table_size_bytes", "m6", "" },
	{ "prometheus_tsdb_wal_fsync_duration_seconds", "q-3:promq", "" },
	{ "prometheus_tsdb_wal_segment_current", "i2", "" },
	{ NULL, NULL, NULL },
};

static const struct famspec nginx_fams[] = {
	{ "nginx_ingress_controller_build_info", "=1", "ngbuild" },
	{ "nginx_ingress_controller_config_hash", "k18", "" },
	{ "nginx_ingress_controller_config_last_reload_successful", "=1", "" },
	{ "nginx_ingress_controller_nginx_process_connections", "i2", "ngconn" },
	{ "nginx_ingress_controller_nginx_process_cpu_seconds_total", "s-1", "" },
	{ "nginx_ingress_controller_nginx_process_requests_total", "c2", "" },
	{ "nginx_ingress_controller_nginx_process_resident_memory_bytes", "m8", "" },
	{ "nginx_ingress_controller_request_duration_seconds", "h0:def", "ingress method" },
	{ "nginx_ingress_controller_requests", "c0", "ingress method ngstatus" },
	{ "nginx_ingress_controller_ssl_expire_time_seconds", "C", "nghost" },
	{ "nginx_ingress_controller_success", "=1", "" },
	{ NULL, NULL, NULL },
};

static const struct famspec goapp_fams[] = {
	{ "app_build_info", "=1", "@build" },
	{ "app_cache_requests_total", "c1", "appcache" },
	{ "go_sql_stats_connections_idle", "i1", "dbname" },
	{ "go_sql_stats_connections_in_use", "i0", "dbname" },
	{ "go_sql_stats_wait_count_total", "c-2", "dbname" },
	{ "go_sql_stats_wait_duration_seconds_total", "F-3", "dbname" },
	{ "http_request_duration_seconds", "h-1:def", "handler method" },
	{ "http_requests_in_flight", "i0", "" },
	{ "http_requests_total", "c0", "hcode handler method" },
	{ NULL, NULL, NULL },
};

static const struct famspec grpcapp_fams[] = {
	{ "grpc_client_handled_total", "c0", "grpcm grpccode" },
	{ "grpc_client_started_total", "c0", "grpcm" },
	{ "grpc_server_handled_total", "c0", "grpcm grpccode" },
	{ "grpc_server_handling_seconds", "h-2:def", "grpcm" },
	{ "grpc_server_msg_received_total", "c0", "grpcm" },
	{ "grpc_server_msg_sent_total", "c0", "grpcm" },
	{ "grpc_server_started_total", "c0", "grpcm" },
	{ NULL, NULL, NULL },
};

static const struct famspec javaapp_fams[] = {
	{ "application_ready_time_seconds", "k1", "" },
	{ "application_started_time_seconds", "k1", "" },
	{ "executor_active_threads", "i0", "executor" },
	{ "executor_completed_tasks_total", "c-1", "executor" },
	{ "executor_pool_size_threads", "i0", "executor" },
	{ "hikaricp_connections", "i1", "hikari" },
	{ "hikaricp_connections_acquire_seconds_count", "c0", "hikari" },
	{ "hikaricp_connections_acquire_seconds_sum", "F-4", "hikari" },
	{ "hikaricp_connections_active", "i0", "hikari" },
	{ "hikaricp_connections_idle", "i1", "hikari" },
	{ "hikaricp_connections_max", "=10", "hikari" },
	{ "hikaricp_connections_pending", "=0", "hikari" },
	{ "http_server_requests_seconds_count", "c0", "springstatus uri method" },
	{ "http_server_requests_seconds_max", "G-1", "springstatus uri method" },
	{ "http_server_requests_seconds_sum", "F-1", "springstatus uri method" },
	{ "jvm_buffer_count_buffers", "i1", "jvmbuf" },
	{ "jvm_buffer_memory_used_bytes", "m6", "jvmbuf" },
	{ "jvm_buffer_total_capacity_bytes", "m6", "jvmbuf" },
	{ "jvm_classes_loaded_classes", "i4", "" },
	{ "jvm_classes_unloaded_classes_total", "k1", "" },
	{ "jvm_gc_live_data_size_bytes", "m8", "" },
	{ "jvm_gc_max_data_size_bytes", "k9", "" },
	{ "jvm_gc_memory_allocated_bytes_total", "c7", "" },
	{ "jvm_gc_memory_promoted_bytes_total", "c5", "" },
	{ "jvm_gc_pause_seconds_count", "c-1", "jvmgc" },
	{ "jvm_gc_pause_seconds_max", "G-2", "jvmgc" },
	{ "jvm_gc_pause_seconds_sum", "F-3", "jvmgc" },
	{ "jvm_memory_committed_bytes", "m8", "jvmmem" },
	{ "jvm_memory_max_bytes", "k8", "jvmmem" },
	{ "jvm_memory_used_bytes", "m8", "jvmmem" },
	{ "jvm_threads_daemon_threads", "i1", "" },
	{ "jvm_threads_live_threads", "i1", "" },
	{ "jvm_threads_peak_threads", "i1", "" },
	{ "jvm_threads_states_threads", "i0", "jvmstate" },
	{ "logback_events_total", "c-1", "loglevel" },
	{ "process_cpu_usage", "G-2", "" },
	{ "process_files_max_files", "=1048576", "" },
	{ "process_files_open_files", "i2", "" },
	{ "process_start_time_seconds", "T", "" },
	{ "process_uptime_seconds", "u", "" },
	{ "system_cpu_count", "k1", "" },
	{ "system_cpu_usage", "G-1", "" },
	{ "system_load_average_1m", "g0", "" },
	{ "tomcat_sessions_active_current_sessions", "=0", "" },
	{ "tomcat_sessions_active_max_sessions", "=0", "" },
	{ "tomcat_sessions_created_sessions_total", "=0", "" },
	{ NULL, NULL, NULL },
};

/* Workloads: the application pods scraped as targets (kinds W_GO ..) and,
 * with the infrastructure ones, the subjects of cAdvisor and
 * kube-state-metrics series. image NULL: an ECR image "<ns>/<name>:v1.x.y". */
enum wkind { W_INFRA, W_GO, W_JAVA, W_GRPC };
enum ctl { CTL_DEPLOY, CTL_DS, CTL_STS };

struct workload {
	const char *name, *ns, *image;
	enum wkind kind;
	enum ctl ctl;
};

static const struct workload workloads[] = {
	{ "frontend", "shop", NULL, W_GO, CTL_DEPLOY },
	{ "checkout", "shop", NULL, W_GO, CTL_DEPLOY },
	{ "cart", "shop", NULL, W_GO, CTL_DEPLOY },
	{ "shipping", "shop", NULL, W_GO, CTL_DEPLOY },
	{ "payments-api", "payments", NULL, W_GO, CTL_DEPLOY },
	{ "auth", "identity", NULL, W_GO, CTL_DEPLOY },
	{ "search-api", "search", NULL, W_GO, CTL_DEPLOY },
	{ "notification", "platform", NULL, W_GO, CTL_DEPLOY },
	{ "ad-service", "shop", NULL, W_JAVA, CTL_DEPLOY },
	{ "order-service", "shop", NULL, W_JAVA, CTL_DEPLOY },
	{ "billing", "payments", NULL, W_JAVA, CTL_DEPLOY },
	{ "user-profile", "identity", NULL, W_JAVA, CTL_DEPLOY },
	{ "catalog-indexer", "search", NULL, W_JAVA, CTL_STS },
	{ "productcatalog", "shop", NULL, W_GRPC, CTL_DEPLOY },
	{ "currency", "shop", NULL, W_GRPC, CTL_DEPLOY },
	{ "recommendation", "search", NULL, W_GRPC, CTL_DEPLOY },
	{ "email", "platform", NULL, W_GRPC, CTL_DEPLOY },
	{ "ledger", "payments", NULL, W_GRPC, CTL_STS },
	{ "kube-proxy", "kube-system", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/kube-proxy:v1.26.2-minimal-eksbuild.1",
	  W_INFRA, CTL_DS },
	{ "aws-node", "kube-system", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.12.6-eksbuild.2",
	  W_INFRA, CTL_DS },
	{ "ebs-csi-node", "kube-system", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/aws-ebs-csi-driver:v1.19.0",
	  W_INFRA, CTL_DS },
	{ "node-exporter", "monitoring", "quay.io/prometheus/node-exporter:v1.5.0", W_INFRA, CTL_DS },
	{ "fluent-bit", "logging", "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.31.11", W_INFRA, CTL_DS },
	{ "coredns", "kube-system", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/coredns:v1.9.3-eksbuild.3",
	  W_INFRA, CTL_DEPLOY },
	{ "cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.11.1", W_INFRA, CTL_DEPLOY },
	{ "argocd-repo-server", "argocd", "quay.io/argoproj/argocd:v2.6.7", W_INFRA, CTL_DEPLOY },
	{ "grafana", "monitoring", "docker.io/grafana/grafana:9.4.7", W_INFRA, CTL_DEPLOY },
	{ "redis", "shop", "docker.io/library/redis:7.0.10-alpine", W_INFRA, CTL_STS },
};
#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

enum podstyle { POD_NONE, POD_DAEMONSET, POD_DEPLOYMENT, POD_STATEFULSET, POD_STATIC };

/* A kind of scrape target; NULL strings are the workload's (application
 * kinds) or no label, "" the workload's name. */
struct jobspec {
	char code;                  /* its letter in PATTERN */
	const char *job, *container, *endpoint, *namespace, *service, *metrics_path;
	unsigned port;
	enum podstyle pod;
	const char *pod_base;
	int node_label, on_node;    /* a node="..." label; the node's address */
	unsigned slots;             /* subjects of @ctr / @pod dimensions */
	enum wkind app;             /* application kinds: which workloads */
	const struct famspec *sets[4];
};

static const struct jobspec job_specs[] = {
	{ 'N', "node-exporter", "node-exporter", "https", "monitoring", "node-exporter", NULL, 9100,
	  POD_DAEMONSET, "node-exporter", 0, 1, 0, W_INFRA, { node_fams, go_fams, scrape_fams, NULL } },
	{ 'C', "kubelet", NULL, "https-metrics", "kube-system", "kubelet", "/metrics/cadvisor", 10250,
	  POD_NONE, NULL, 1, 1, 12, W_INFRA, { cadvisor_fams, scrape_fams, NULL, NULL } },
	{ 'K', "kubelet", NULL, "https-metrics", "kube-system", "kubelet", "/metrics", 10250,
	  POD_NONE, NULL, 1, 1, 0, W_INFRA, { kubelet_fams, go_fams, scrape_fams, NULL } },
	{ 'M', "kube-state-metrics", "kube-state-metrics", "http-metrics", "monitoring", "kube-state-metrics",
	  NULL, 8080, POD_DEPLOYMENT, "kube-state-metrics", 0, 0, 30, W_INFRA,
	  { ksm_fams, go_fams, scrape_fams, NULL } },
	{ 'S', "apiserver", NULL, "https", "default", "kubernetes", NULL, 443,
	  POD_NONE, NULL, 0, 0, 0, W_INFRA, { apiserver_fams, go_fams, scrape_fams, NULL } },
	{ 'E', "kube-etcd", NULL, "http-metrics", "kube-system", "kube-etcd", NULL, 2381,
	  POD_STATIC, "etcd", 0, 0, 0, W_INFRA, { etcd_fams, go_fams, scrape_fams, NULL } },
	{ 'D', "kube-dns", "coredns", "metrics", "kube-system", "kube-dns", NULL, 9153,
	  POD_DEPLOYMENT, "coredns", 0, 0, 0, W_INFRA, { coredns_fams, go_fams, scrape_fams, NULL } },
	{ 'P', "prometheus-k8s", "prometheus", "web", "monitoring", "prometheus-k8s", NULL, 9090,
	  POD_STATEFULSET, "prometheus-k8s", 0, 0, 0, W_INFRA, { prom_fams, go_fams, scrape_fams, NULL } },
	{ 'X', "ingress-nginx-controller-metrics", "controller", "metrics", "ingress-nginx",
	  "ingress-nginx-controller-metrics", NULL, 10254, POD_DEPLOYMENT, "ingress-nginx-controller", 0, 0, 0,
	  W_INFRA, { nginx_fams, go_fams, scrape_fams, NULL } },
	{ 'A', NULL, "", "http", NULL, "", NULL, 8080, POD_DEPLOYMENT, NULL, 0, 0, 0, W_GO,
	  { goapp_fams, go_fams, scrape_fams, NULL } },
	{ 'J', NULL, "", "http", NULL, "", NULL, 8081, POD_DEPLOYMENT, NULL, 0, 0, 0, W_JAVA,
	  { javaapp_fams, scrape_fams, NULL, NULL } },
	{ 'R', NULL, "", "grpc-metrics", NULL, "", NULL, 9091, POD_DEPLOYMENT, NULL, 0, 0, 0, W_GRPC,
	  { grpcapp_fams, go_fams, scrape_fams, NULL } },
};
#define N_JOBS (sizeof(job_specs) / sizeof(job_specs[0]))

/*
 * One cycle of the fleet: 4 nodes (node-exporter N, cAdvisor C, kubelet K on
 * the node's address), 16 application pods (A Go, J Java, R gRPC), and one
 * each of kube-state-metrics M, API server S, etcd E, CoreDNS D, Prometheus
 * P, ingress-nginx X. One of each kind comes first so that small heads see
 * every kind.
 */
static const char PATTERN[] = "ANCKJRDXPEMS" "AANCKAJRA" "NCKAARJA" "ANCKAJRA";

/* ---- the catalog compiled: what gen_open() builds ---- */

enum special { SP_NONE, SP_CTR, SP_POD, SP_PODINFO, SP_OWNER, SP_PODLABELS, SP_CINFO, SP_PODCTR, SP_BUILD };

struct cset {
	unsigned n;
	char **text;
	double *bound;
	double median_lo, median_hi;
};

struct cdim {
	unsigned nlabels, total, pick;
	char **labels;
	char **values;              /* total x nlabels */
	enum special special;
};

#define MAX_DIMS 4

struct cfam {
	const char *name;
	char kind;
	double param;
	const struct cset *set;     /* h, q */
	unsigned id, ndims;
	const struct cdim *dims[MAX_DIMS];
	uint64_t combos, parts;
};

struct cjob {
	const struct jobspec *spec;
	struct cfam *fams;
	unsigned nfams;
	uint64_t *first;            /* series offset of each family, nfams + 1 */
	uint64_t series;
};

#define PATTERN_LEN (sizeof(PATTERN) - 1)
#define N_SETS (sizeof(set_specs) / sizeof(set_specs[0]))
#define N_DIMS (sizeof(dim_specs) / sizeof(dim_specs[0]))
#define TEXT_MAX 4096
#define LB_MAX 20

struct block {
	struct block *next;
	size_t used, cap;
	char data[];
};

struct gen {
	struct gen_opts o;
	struct block *arena;
	int oom;
	struct cset sets[N_SETS];
	struct cdim dims[N_DIMS];
	struct cjob jobs[N_JOBS];
	const struct cjob *pattern[PATTERN_LEN];
	unsigned anchor[PATTERN_LEN];          /* the node target a C/K target sits on */
	uint64_t pattern_first[PATTERN_LEN + 1];
	struct perm order, tomb_order;

	/* scratch of the calls that return borrowed data */
	char text[TEXT_MAX];
	size_t text_used;
	uint32_t scrapes;                      /* the stream: samples, or periodic's scrapes so far */
	int64_t *t;                            /* scrapes of them, as v and restart */
	uint64_t *v;
	uint8_t *restart;                      /* the target restarts at this scrape */
	struct xor_enc xor;
	struct buf labels;

	/* the exemplar stream: one scrape cycle at a time */
	struct gen_exemplar *ex;
	size_t ex_n, ex_pos;
	uint32_t ex_cycle;
};

static void *arena_alloc(struct gen *g, size_t n)
{
	void *p;

	n = (n + 7) & ~(size_t)7;
	if (!g->arena || g->arena->cap - g->arena->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		struct block *b = malloc(sizeof(*b) + cap);

		if (!b) {
			g->oom = 1;
			return NULL;
		}
		b->next = g->arena;
		b->used = 0;
		b->cap = cap;
		g->arena = b;
	}
	p = g->arena->data + g->arena->used;
	g->arena->used += n;
	return p;
}

static char *arena_strndup(struct gen *g, const char *s, size_t n)
{
	char *p = arena_alloc(g, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* Splits s at sep into up to max pieces (copied); returns how many, or 0. */
static unsigned split(struct gen *g, const char *s, char sep, char **out, unsigned max)
{
	unsigned n = 0;

	for (;;) {
		const char *end = strchr(s, sep);
		size_t len = end ? (size_t)(end - s) : strlen(s);

		if (n == max || !(out[n++] = arena_strndup(g, s, len)))
			return 0;
		if (!end)
			return n;
		s = end + 1;
	}
}

static unsigned count_char(const char *s, char c)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static int compile_sets(struct gen *g, struct err *e)
{
	for (unsigned i = 0; i < N_SETS; i++) {
		struct cset *cs = &g->sets[i];
		unsigned n = count_char(set_specs[i].values, '|') + 1;

		cs->text = arena_alloc(g, n * sizeof(char *));
		cs->bound = arena_alloc(g, n * sizeof(double));
		if (!cs->text || !cs->bound || split(g, set_specs[i].values, '|', cs->text, n) != n)
			return err_set(e, SNAPARC_NOMEM, "out of memory building the catalog");
		cs->n = n;
		for (unsigned j = 0; j < n; j++)
			cs->bound[j] = strtod(cs->text[j], NULL);
		cs->median_lo = set_specs[i].median_lo;
		cs->median_hi = set_specs[i].median_hi;
	}
	return 0;
}

static int compile_dims(struct gen *g, struct err *e)
{
	static const char *const specials[] = { "", "@ctr", "@pod", "@podinfo", "@owner", "@podlabels",
						 "@cinfo", "@podctr", "@build" };

	for (unsigned i = 0; i < N_DIMS; i++) {
		const struct dimspec *ds = &dim_specs[i];
		struct cdim *cd = &g->dims[i];
		char *combos[64];

		cd->special = SP_NONE;
		if (ds->key[0] == '@') {
			for (unsigned s = 1; s < sizeof(specials) / sizeof(specials[0]); s++)
				if (!strcmp(ds->key, specials[s]))
					cd->special = (enum special)s;
			cd->total = 1;
			continue;
		}
		cd->nlabels = count_char(ds->labels, ',') + 1;
		cd->total = count_char(ds->values, '|') + 1;
		cd->pick = ds->pick;
		if (cd->total > sizeof(combos) / sizeof(combos[0]))
			return err_set(e, SNAPARC_INVALID, "catalog: dimension %s has over 64 values", ds->key);
		cd->labels = arena_alloc(g, cd->nlabels * sizeof(char *));
		cd->values = arena_alloc(g, cd->total * cd->nlabels * sizeof(char *));
		if (!cd->labels || !cd->values)
			return err_set(e, SNAPARC_NOMEM, "out of memory building the catalog");
		if (split(g, ds->labels, ',', cd->labels, cd->nlabels) != cd->nlabels ||
		    split(g, ds->values, '|', combos, cd->total) != cd->total)
			return err_set(e, SNAPARC_NOMEM, "out of memory building the catalog");
		for (unsigned v = 0; v < cd->total; v++)
			if (split(g, combos[v], ',', cd->values + v * cd->nlabels, cd->nlabels) != cd->nlabels)
				return err_set(e, SNAPARC_INVALID, "catalog: dimension %s: value %u has the wrong "
					       "number of fields", ds->key, v);
	}
	return 0;
}

/* Values a target uses of a dimension. */
static unsigned dim_count(const struct cdim *d, const struct jobspec *js)
{
	if (d->special == SP_CTR || d->special == SP_POD)
		return js->slots;
	return d->pick ? d->pick : d->total;
}

static int compile_family(struct gen *g, const struct jobspec *js, const struct famspec *fs,
			  struct cfam *f, unsigned id, struct err *e)
{
	const char *k = fs->kind, *colon = strchr(k, ':'), *d = fs->dims;

	memset(f, 0, sizeof(*f));
	f->name = fs->name;
	f->kind = k[0];
	f->id = id;
	f->param = k[1] ? strtod(k + 1, NULL) : 0;
	f->parts = 1;
	if (colon) {
		for (unsigned i = 0; i < N_SETS; i++)
			if (!strcmp(colon + 1, set_specs[i].key))
				f->set = &g->sets[i];
		if (!f->set || (f->kind != 'h' && f->kind != 'q'))
			return err_set(e, SNAPARC_INVALID, "catalog: family %s: bad kind %s", fs->name, k);
		f->parts = f->set->n + 2;
	} else if (f->kind == 'h' || f->kind == 'q') {
		return err_set(e, SNAPARC_INVALID, "catalog: family %s: no bucket set", fs->name);
	}
	f->combos = 1;
	while (*d) {
		const char *end = strchr(d, ' ');
		size_t len = end ? (size_t)(end - d) : strlen(d);
		const struct cdim *found = NULL;

		for (unsigned i = 0; i < N_DIMS; i++)
			if (strlen(dim_specs[i].key) == len && !memcmp(dim_specs[i].key, d, len))
				found = &g->dims[i];
		if (!found || f->ndims == MAX_DIMS)
			return err_set(e, SNAPARC_INVALID, "catalog: family %s: unknown dimension or too many "
				       "in \"%s\"", fs->name, fs->dims);
		f->dims[f->ndims++] = found;
		f->combos *= dim_count(found, js);
		d = end ? end + 1 : d + len;
	}
	return 0;
}

static int compile_jobs(struct gen *g, struct err *e)
{
	unsigned id = 0;

	for (unsigned j = 0; j < N_JOBS; j++) {
		const struct jobspec *js = &job_specs[j];
		struct cjob *cj = &g->jobs[j];
		unsigned n = 0, i = 0;

		for (unsigned s = 0; js->sets[s]; s++)
			for (const struct famspec *fs = js->sets[s]; fs->name; fs++)
				n++;
		cj->spec = js;
		cj->fams = arena_alloc(g, n * sizeof(*cj->fams));
		cj->first = arena_alloc(g, (n + 1) * sizeof(*cj->first));
		if (!cj->fams || !cj->first)
			return err_set(e, SNAPARC_NOMEM, "out of memory building the catalog");
		for (unsigned s = 0; js->sets[s]; s++) {
			for (const struct famspec *fs = js->sets[s]; fs->name; fs++, i++) {
				int rc = compile_family(g, js, fs, &cj->fams[i], id++, e);

				if (rc)
					return rc;
				cj->first[i] = cj->series;
				cj->series += cj->fams[i].combos * cj->fams[i].parts;
			}
		}
		cj->first[n] = cj->series;
		cj->nfams = n;
	}
	return 0;
}

static int compile_pattern(struct gen *g, struct err *e)
{
	unsigned node = PATTERN_LEN;

	for (unsigned p = 0; p < PATTERN_LEN; p++) {
		const struct cjob *cj = NULL;

		for (unsigned j = 0; j < N_JOBS; j++)
			if (job_specs[j].code == PATTERN[p])
				cj = &g->jobs[j];
		if (!cj)
			return err_set(e, SNAPARC_INVALID, "catalog: unknown target kind '%c'", PATTERN[p]);
		if (PATTERN[p] == 'N')
			node = p;
		if (cj->spec->on_node && node == PATTERN_LEN)
			return err_set(e, SNAPARC_INVALID, "catalog: '%c' before any node", PATTERN[p]);
		g->pattern[p] = cj;
		g->anchor[p] = cj->spec->on_node ? node : p;
		g->pattern_first[p + 1] = g->pattern_first[p] + cj->series;
	}
	return 0;
}

/* ---- where a series is ---- */

struct target {
	uint64_t number, key, host;    /* host: the target whose address it has */
	const struct cjob *job;
	const struct workload *w;      /* application pods */
	uint8_t ip[4];
	int64_t offset_ms;
	unsigned jitter_max;
	int jittery;
	double uptime_s;
	uint32_t restart;              /* scrape of the restart; samples when none */
};

struct loc {
	uint64_t index;
	struct target tg;
	const struct cfam *fam;
	uint64_t combo;
	unsigned part;
	unsigned vidx[MAX_DIMS];       /* each dimension's value, 0 .. count-1 */
	unsigned slot;                 /* the @ctr / @pod subject */
};

static const struct workload *pick_workload(enum wkind kind, uint64_t h)
{
	unsigned n = 0, i;

	for (i = 0; i < N_WORKLOADS; i++)
		n += workloads[i].kind == kind;
	h %= n;
	for (i = 0; i < N_WORKLOADS; i++)
		if (workloads[i].kind == kind && h-- == 0)
			break;
	return &workloads[i];
}

static void target_init(const struct gen *g, struct target *tg, uint64_t number, uint64_t host,
			const struct cjob *job)
{
	struct rng r = { hash4(g->o.seed, TAG_TARGET, number, 0) };
	/* an odd multiplier is a bijection of 24 bits: addresses are unique */
	uint32_t a24 = (uint32_t)((host * 0x9e3779u + 0x0a0b0cu) & 0xffffff);
	int64_t iv = g->o.interval_ms;

	tg->number = number;
	tg->key = r.s;
	tg->host = host;
	tg->job = job;
	tg->w = job->spec->app == W_INFRA ? NULL : pick_workload(job->spec->app, rng_next(&r));
	tg->ip[0] = 10;
	tg->ip[1] = (uint8_t)(a24 >> 16);
	tg->ip[2] = (uint8_t)(a24 >> 8);
	tg->ip[3] = (uint8_t)a24;
	tg->jitter_max = (unsigned)(iv / 8 < 25 ? iv / 8 : 25);
	tg->jittery = tg->jitter_max >= 3 && rng_unit(&r) < 0.15;
	tg->offset_ms = (int64_t)tg->jitter_max + (int64_t)rng_below(&r, (uint64_t)(iv - 2 * tg->jitter_max));
	tg->uptime_s = exp(rng_range(&r, log(3600.0), log(60 * 86400.0)));
	tg->restart = g->o.samples;
	if (g->o.samples > 1 && rng_unit(&r) < 0.03)
		tg->restart = 1 + (uint32_t)rng_below(&r, g->o.samples - 1);
}

static void locate(const struct gen *g, uint64_t index, struct loc *L)
{
	uint64_t cycle_series = g->pattern_first[PATTERN_LEN];
	uint64_t cycle = index / cycle_series, off = index % cycle_series, rest;
	unsigned lo = 0, hi = PATTERN_LEN;
	const struct cjob *job;

	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (g->pattern_first[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	job = g->pattern[lo];
	target_init(g, &L->tg, cycle * PATTERN_LEN + lo, cycle * PATTERN_LEN + g->anchor[lo], job);
	off -= g->pattern_first[lo];
	for (lo = 0, hi = job->nfams; hi - lo > 1;) {
		unsigned mid = (lo + hi) / 2;

		if (job->first[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	L->index = index;
	L->fam = &job->fams[lo];
	off -= job->first[lo];
	L->combo = off / L->fam->parts;
	L->part = (unsigned)(off % L->fam->parts);
	L->slot = 0;
	rest = L->combo;
	for (unsigned d = L->fam->ndims; d-- > 0;) {
		unsigned n = dim_count(L->fam->dims[d], job->spec);

		L->vidx[d] = (unsigned)(rest % n);
		rest /= n;
		if (L->fam->dims[d]->special == SP_CTR || L->fam->dims[d]->special == SP_POD)
			L->slot = L->vidx[d];
	}
}

/* The part of a histogram or summary that is a bucket or quantile. */
static int is_le_part(const struct loc *L) { return L->part < L->fam->parts - 2; }

static int exemplar_capable(const struct loc *L)
{
	return L->fam->kind == 'c' || (L->fam->kind == 'h' && is_le_part(L));
}

static int64_t sample_time(const struct gen *g, const struct target *tg, uint32_t k)
{
	int64_t t = g->o.start_ms + tg->offset_ms + (int64_t)k * g->o.interval_ms;

	if (tg->jittery) {
		uint64_t h = hash4(g->o.seed, TAG_JITTER, tg->number, k);

		if (h % 100 < 40) {
			int64_t j = 3 + (int64_t)((h >> 8) % (tg->jitter_max - 2));

			t += (h >> 40) & 1 ? j : -j;
		}
	}
	return t;
}

/* ---- labels ---- */

struct lb {
	struct gen *g;
	struct rec_label l[LB_MAX];
	size_t n;
	int overflow;
};

static void lb_put(struct lb *b, const char *name, const char *value, size_t len)
{
	size_t i;

	if (!len)
		return;   /* Prometheus drops labels with empty values */
	for (i = 0; i < b->n && strcmp(b->l[i].name, name); i++)
		;
	if (i == LB_MAX) {
		b->overflow = 1;
		return;
	}
	b->n += i == b->n;
	b->l[i].name = name;
	b->l[i].name_len = strlen(name);
	b->l[i].value = value;
	b->l[i].value_len = len;
}

/* Formats a value into the handle's text; the label points there. */
__attribute__((format(printf, 3, 4)))
static void lb_fmt(struct lb *b, const char *name, const char *fmt, ...)
{
	struct gen *g = b->g;
	size_t room = TEXT_MAX - g->text_used;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(g->text + g->text_used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		b->overflow = 1;
		return;
	}
	lb_put(b, name, g->text + g->text_used, (size_t)n);
	g->text_used += (size_t)n + 1;
}

static void lb_str(struct lb *b, const char *name, const char *value)
{
	if (value)
		lb_put(b, name, value, strlen(value));
}

/* Kubernetes' name suffix alphabet (no vowels, no look-alikes). */
static const char SAFE[] = "bcdfghjklmnpqrstvwxz2456789";

static void safe_chars(char *out, uint64_t x, unsigned n)
{
	for (unsigned i = 0; i < n; i++, x /= 27)
		out[i] = SAFE[x % 27];
	out[n] = 0;
}

/* A Deployment's pod-template-hash (9 or 10 characters). */
static void template_hash(const struct gen *g, const char *name, char out[11])
{
	uint64_t h = hash_str(g->o.seed, name);

	safe_chars(out, h >> 1, 9 + (unsigned)(h & 1));
}

/* A pod of a controller: suffix picks the 5 random characters (taken mod
 * 27^5, so consecutive suffixes give distinct names) or a StatefulSet's
 * ordinal. */
static void pod_name(const struct gen *g, char *out, size_t cap, const char *base, enum ctl ctl,
		     uint64_t suffix)
{
	char hash[11], sfx[6];

	safe_chars(sfx, suffix % 14348907u, 5);
	if (ctl == CTL_DEPLOY) {
		template_hash(g, base, hash);
		snprintf(out, cap, "%s-%s-%s", base, hash, sfx);
	} else if (ctl == CTL_DS) {
		snprintf(out, cap, "%s-%s", base, sfx);
	} else {
		snprintf(out, cap, "%s-%llu", base, (unsigned long long)suffix);
	}
}

static void node_name(char *out, size_t cap, const uint8_t ip[4])
{
	snprintf(out, cap, "ip-%u-%u-%u-%u.eu-west-1.compute.internal", ip[0], ip[1], ip[2], ip[3]);
}

static void image_of(const struct gen *g, const struct workload *w, char *out, size_t cap)
{
	uint64_t h = hash_str(g->o.seed, w->name);

	if (w->image)
		snprintf(out, cap, "%s", w->image);
	else
		snprintf(out, cap, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/%s/%s:v1.%u.%u", w->ns, w->name,
			 (unsigned)(h % 60), (unsigned)(h >> 8) % 12);
}

static void target_labels(struct gen *g, struct lb *b, const struct target *tg)
{
	const struct jobspec *js = tg->job->spec;
	const char *wname = tg->w ? tg->w->name : NULL;
	char name[128];
	enum ctl ctl;

	if (js->container)
		lb_str(b, "container", *js->container ? js->container : wname);
	lb_str(b, "endpoint", js->endpoint);
	lb_fmt(b, "instance", "%u.%u.%u.%u:%u", tg->ip[0], tg->ip[1], tg->ip[2], tg->ip[3], js->port);
	lb_str(b, "job", js->job ? js->job : wname);
	lb_str(b, "metrics_path", js->metrics_path);
	lb_str(b, "namespace", js->namespace ? js->namespace : tg->w->ns);
	if (js->node_label) {
		node_name(name, sizeof(name), tg->ip);
		lb_fmt(b, "node", "%s", name);
	}
	switch (js->pod) {
	case POD_NONE:
		break;
	case POD_DAEMONSET:
	case POD_DEPLOYMENT:
	case POD_STATEFULSET:
		ctl = js->pod == POD_DAEMONSET ? CTL_DS : js->pod == POD_STATEFULSET ? CTL_STS :
		      tg->w ? tg->w->ctl : CTL_DEPLOY;
		pod_name(g, name, sizeof(name), js->pod_base ? js->pod_base : wname, ctl,
			 ctl == CTL_STS ? tg->key % 3 : tg->key);
		lb_fmt(b, "pod", "%s", name);
		break;
	case POD_STATIC: {
		char node[64];

		node_name(node, sizeof(node), tg->ip);
		lb_fmt(b, "pod", "%s-%s", js->pod_base, node);
		break;
	}
	}
	if (js->service)
		lb_str(b, "service", *js->service ? js->service : wname);
}

/* The subject of a cAdvisor or kube-state-metrics slot: a pod of some
 * workload, with its ids. */
struct subject {
	const struct workload *w;
	uint64_t h, cid[4];         /* cid: the container id's 256 bits */
	char pod[128], image[160], uid[37];
};

static void subject_init(const struct gen *g, const struct target *tg, unsigned slot, struct subject *s)
{
	/* distinct slots of a target get distinct pods: 7919 is prime to 27^5,
	 * and a StatefulSet's pods are numbered by slot */
	uint64_t sfx, u0, u1;

	s->h = hash4(g->o.seed, TAG_SLOT, tg->number, slot);
	u0 = mix64(s->h + 5);   /* the uid shares no bits with the container id */
	u1 = mix64(s->h + 6);
	s->w = &workloads[s->h % N_WORKLOADS];
	sfx = s->w->ctl == CTL_STS ? slot : hash4(g->o.seed, TAG_SLOT, tg->host, 0) + slot * 7919u;
	for (unsigned i = 0; i < 4; i++)
		s->cid[i] = mix64(s->h + 1 + i);
	pod_name(g, s->pod, sizeof(s->pod), s->w->name, s->w->ctl, sfx);
	snprintf(s->uid, sizeof(s->uid), "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(u0 >> 32),
		 (unsigned)(u0 >> 16) & 0xffff, (unsigned)u0 & 0xfff, 0x8000 | ((unsigned)(u1 >> 48) & 0x3fff),
		 (unsigned long long)(u1 & 0xffffffffffffULL));
	image_of(g, s->w, s->image, sizeof(s->image));
}

#define CID_FMT "%016llx%016llx%016llx%016llx"
#define CID_ARGS(c) (unsigned long long)(c)[0], (unsigned long long)(c)[1], (unsigned long long)(c)[2], \
	(unsigned long long)(c)[3]

/* cAdvisor: the container's cgroup (systemd driver, containerd) and image. */
static void cadvisor_labels(struct lb *b, const struct subject *s)
{
	static const char *const qos[] = { "burstable", "burstable", "burstable", "besteffort" };
	const char *q = qos[s->h % 4];
	char u[37];

	memcpy(u, s->uid, sizeof(u));
	for (char *p = u; *p; p++)
		if (*p == '-')
			*p = '_';
	lb_str(b, "container", s->w->name);
	lb_fmt(b, "id", "/kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice/cri-containerd-" CID_FMT
	       ".scope", q, q, u, CID_ARGS(s->cid));
	lb_fmt(b, "image", "%s", s->image);
	lb_str(b, "namespace", s->w->ns);
	lb_fmt(b, "pod", "%s", s->pod);
}

/* kube_pod_info's node, addresses and uid. */
static void podinfo_labels(struct lb *b, const struct subject *s)
{
	uint32_t node = (uint32_t)(s->h >> 40) % 4096 * 0x9e3779u & 0xffffff, ip = (uint32_t)(s->cid[3] >> 40);
	uint8_t nip[4] = { 10, (uint8_t)(node >> 16), (uint8_t)(node >> 8), (uint8_t)node };
	char nn[64];

	node_name(nn, sizeof(nn), nip);
	lb_fmt(b, "host_ip", "10.%u.%u.%u", nip[1], nip[2], nip[3]);
	lb_fmt(b, "node", "%s", nn);
	lb_fmt(b, "pod_ip", "10.%u.%u.%u", (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	lb_fmt(b, "uid", "%s", s->uid);
}

/* kube_pod_owner's and kube_pod_labels' labels. */
static void owner_labels(const struct gen *g, struct lb *b, const struct subject *s, int labels)
{
	const struct workload *w = s->w;
	char hash[11];

	template_hash(g, w->name, hash);
	if (labels) {
		lb_str(b, "label_app_kubernetes_io_name", w->name);
		if (w->ctl == CTL_DEPLOY)
			lb_fmt(b, "label_pod_template_hash", "%s", hash);
		return;
	}
	lb_str(b, "owner_is_controller", "true");
	lb_str(b, "owner_kind", w->ctl == CTL_DEPLOY ? "ReplicaSet" : w->ctl == CTL_DS ? "DaemonSet" : "StatefulSet");
	if (w->ctl == CTL_DEPLOY)
		lb_fmt(b, "owner_name", "%s-%s", w->name, hash);
	else
		lb_str(b, "owner_name", w->name);
}

/* kube_pod_container_info: container id, image and image digest. */
static void cinfo_labels(const struct gen *g, struct lb *b, const struct subject *s)
{
	char repo[160];
	char *colon;
	uint64_t h;

	lb_str(b, "container", s->w->name);
	lb_fmt(b, "container_id", "containerd://" CID_FMT, CID_ARGS(s->cid));
	lb_fmt(b, "image", "%s", s->image);
	memcpy(repo, s->image, sizeof(repo));
	if ((colon = strrchr(repo, ':')) != NULL)
		*colon = 0;
	h = hash_str(g->o.seed, repo);
	lb_fmt(b, "image_id", "%s@sha256:%016llx%016llx%016llx%016llx", repo, (unsigned long long)h,
	       (unsigned long long)mix64(h), (unsigned long long)mix64(h + 1), (unsigned long long)mix64(h + 2));
}

static void special_labels(struct gen *g, struct lb *b, const struct target *tg, enum special sp, unsigned slot)
{
	struct subject s;

	if (sp == SP_BUILD) {   /* the application's own version */
		uint64_t h = hash_str(g->o.seed, tg->w->name);

		lb_fmt(b, "revision", "%07llx", (unsigned long long)(h >> 36));
		lb_fmt(b, "version", "v1.%u.%u", (unsigned)(h % 60), (unsigned)(h >> 8) % 12);
		return;
	}
	subject_init(g, tg, slot, &s);
	switch (sp) {
	case SP_CTR: cadvisor_labels(b, &s); break;
	case SP_POD:
		lb_str(b, "namespace", s.w->ns);
		lb_fmt(b, "pod", "%s", s.pod);
		break;
	case SP_PODINFO: podinfo_labels(b, &s); break;
	case SP_OWNER: owner_labels(g, b, &s, 0); break;
	case SP_PODLABELS: owner_labels(g, b, &s, 1); break;
	case SP_CINFO: cinfo_labels(g, b, &s); break;
	case SP_PODCTR: lb_str(b, "container", s.w->name); break;
	case SP_NONE: case SP_BUILD: break;
	}
}

/* The service whose pool offsets a target uses: same app, same handlers. */
static uint64_t service_of(const struct target *tg)
{
	return tg->w ? (uint64_t)(tg->w - workloads) : 1000 + (uint64_t)tg->job->spec->code;
}

/* Builds the labels of L into out; SNAPARC_INVALID if the catalog overflows. */
static int build_labels(struct gen *g, const struct loc *L, struct gen_series *out, struct err *e)
{
	static const char *const hsuffix[] = { "_bucket", "_sum", "_count" };
	const struct cfam *f = L->fam;
	struct lb b = { .g = g };
	unsigned nle = (unsigned)f->parts - 2;
	const char *suffix = "";

	g->text_used = 0;
	if (f->kind == 'h')
		suffix = is_le_part(L) ? hsuffix[0] : hsuffix[1 + (L->part - nle)];
	else if (f->kind == 'q' && !is_le_part(L))
		suffix = hsuffix[1 + (L->part - nle)];
	lb_fmt(&b, "__name__", "%s%s", f->name, suffix);
	target_labels(g, &b, &L->tg);
	for (unsigned d = 0; d < f->ndims; d++) {
		const struct cdim *cd = f->dims[d];
		unsigned v = L->vidx[d];

		if (cd->special != SP_NONE) {
			special_labels(g, &b, &L->tg, cd->special, L->slot);
			continue;
		}
		if (cd->pick)
			v = (unsigned)((hash4(g->o.seed, TAG_PICK, service_of(&L->tg), (uint64_t)(cd - g->dims)) + v) %
				       cd->total);
		for (unsigned i = 0; i < cd->nlabels; i++)
			lb_str(&b, cd->labels[i], cd->values[v * cd->nlabels + i]);
	}
	if ((f->kind == 'h' || f->kind == 'q') && is_le_part(L))
		lb_str(&b, f->kind == 'h' ? "le" : "quantile", f->set->text[L->part]);
	if (b.overflow || b.n > GEN_MAX_LABELS || b.n < 5)
		return err_set(e, SNAPARC_INVALID, "catalog: %s%s has %zu labels%s (want 5..%d)", f->name, suffix,
			       b.n, b.overflow ? " or more" : "", GEN_MAX_LABELS);
	/* sorted by name, as Prometheus keeps them ("__name__" sorts first) */
	for (size_t i = 1; i < b.n; i++) {
		struct rec_label x = b.l[i];
		size_t j = i;

		for (; j > 0 && strcmp(b.l[j - 1].name, x.name) > 0; j--)
			b.l[j] = b.l[j - 1];
		b.l[j] = x;
	}
	out->ref = L->index + 1;
	out->nlabels = b.n;
	memcpy(out->labels, b.l, b.n * sizeof(b.l[0]));
	out->exemplar_capable = exemplar_capable(L);
	out->nsamples = 0;
	out->t = NULL;
	out->v = NULL;
	return 0;
}

/* ---- values ---- */

static const char *kind_name(const struct loc *L)
{
	int le = is_le_part(L), sum = L->part == L->fam->parts - 2;

	switch (L->fam->kind) {
	case 'c': return "counter";
	case 's': return "counter-centiseconds";
	case 'f': return "counter-nanoseconds";
	case 'F': return "counter-float";
	case 'g': return "gauge-2dp";
	case 'G': return "gauge-float";
	case 'i': return "gauge-int";
	case 'm': return "gauge-bytes";
	case 'n': case 'u': return "time";
	case 'p': return "one-hot";
	case 'r': return "resource";
	case 'h': return le ? "histogram-bucket" : sum ? "histogram-sum" : "histogram-count";
	case 'q': return le ? "summary-quantile" : sum ? "summary-sum" : "summary-count";
	}
	return "constant";
}

static double pow10_spread(struct rng *r, double magnitude, double spread)
{
	return pow(10, magnitude + rng_range(r, -spread, spread));
}

static double interval_s(const struct gen *g) { return (double)g->o.interval_ms / 1000; }

/* A counter of integer units of 1/scale, printed in whole units. */
static void counter_values(const struct gen *g, const struct loc *L, struct rng *r, double scale)
{
	double rate = pow10_spread(r, L->fam->param, 1) * scale, mean = rate * interval_s(g);
	uint64_t x = (uint64_t)(rate * L->tg.uptime_s * rng_range(r, 0.5, 1));

	for (uint32_t k = 0; k < g->scrapes; k++) {
		if (g->restart[k])
			x = 0;
		if (k)
			x += (uint64_t)(mean * rng_range(r, 0.7, 1.3) + rng_unit(r));
		/* an integer over a power of ten rounds to the decimal's double */
		g->v[k] = f64_bits(scale == 1 ? (double)x : (double)x / scale);
	}
}

static void float_counter_values(const struct gen *g, const struct loc *L, struct rng *r)
{
	double rate = pow10_spread(r, L->fam->param, 1), mean = rate * interval_s(g);
	double x = rate * L->tg.uptime_s * rng_range(r, 0.5, 1);

	for (uint32_t k = 0; k < g->scrapes; k++) {
		if (g->restart[k])
			x = 0;
		if (k)
			x += mean * rng_range(r, 0.7, 1.3);
		g->v[k] = f64_bits(x);
	}
}

/* Moves an integer gauge one step at probability p, towards its level. */
static double int_step(struct rng *r, double x, double level, double p, double size)
{
	double step;

	if (rng_unit(r) >= p)
		return x;
	step = 1 + floor(size * rng_unit(r));
	if (rng_unit(r) < (x < level ? 0.65 : 0.35))
		return x + step;
	return x > step ? x - step : 0;
}

static void gauge_values(const struct gen *g, const struct loc *L, struct rng *r)
{
	char kind = L->fam->kind;
	double level = pow10_spread(r, L->fam->param, kind == 'i' ? 0.5 : 1), x;

	if (kind == 'm')
		level = level / 4096 < 1 ? 1 : level / 4096;   /* in pages */
	x = kind == 'g' || kind == 'G' ? level * rng_range(r, 0.5, 1.5) : round(level * rng_range(r, 0.7, 1.3));
	for (uint32_t k = 0; k < g->scrapes; k++) {
		double out = x;

		if (kind == 'g' || kind == 'G') {
			if (k)
				x += 0.1 * (level - x) + 0.05 * level * (2 * rng_unit(r) - 1);
			if (x < 0)
				x = 0;
			out = kind == 'g' ? round(x * 100) / 100 : x;
		} else if (kind == 'i') {
			if (k)
				x = int_step(r, x, level, 0.35, 0.03 * level);
			out = x;
		} else {
			if (k)
				x = int_step(r, x, level, 0.7, 0.01 * x);
			out = x * 4096;
		}
		g->v[k] = f64_bits(out);
	}
}

/*
 * Histograms and summaries: every series of one (_bucket per le, _sum,
 * _count) replays the same stream, seeded by the target, family and label
 * combination, so that they agree with each other.
 */
static void group_values(const struct gen *g, const struct loc *L)
{
	const struct cfam *f = L->fam;
	struct rng r = { hash4(g->o.seed, TAG_GROUP, L->tg.number, (uint64_t)f->id << 32 ^ L->combo) };
	unsigned nle = (unsigned)f->parts - 2;
	double rate, mean_obs, level = 0, fraction = 1, sum;
	uint64_t count;

	if (f->kind == 'h') {
		double median, sigma, le;

		rate = pow10_spread(&r, f->param, 1);
		median = pow(10, rng_range(&r, f->set->median_lo, f->set->median_hi));
		sigma = rng_range(&r, 0.4, 1.2);
		mean_obs = median * exp(sigma * sigma / 2);
		if (L->part < nle) {
			le = f->set->bound[L->part];
			fraction = isinf(le) ? 1 : le <= 0 ? 0 :
				   0.5 * erfc(-(log(le) - log(median)) / (sigma * M_SQRT2));
		}
	} else {
		rate = pow10_spread(&r, -0.5, 1);
		level = pow10_spread(&r, f->param, 0.5);
		mean_obs = level;
	}
	count = (uint64_t)(rate * L->tg.uptime_s * rng_range(&r, 0.5, 1));
	sum = (double)count * mean_obs * rng_range(&r, 0.9, 1.1);
	for (uint32_t k = 0; k < g->scrapes; k++) {
		double u1 = rng_unit(&r), u2 = rng_unit(&r), u3 = rng_unit(&r), u4 = rng_unit(&r), x;

		if (g->restart[k]) {
			count = 0;
			sum = 0;
		}
		if (k) {
			uint64_t inc = (uint64_t)(rate * interval_s(g) * (0.7 + 0.6 * u1) + u2);

			count += inc;
			sum += (double)inc * mean_obs * (0.8 + 0.4 * u3);
		}
		if (L->part == nle + 1)
			x = (double)count;
		else if (L->part == nle)
			x = sum;
		else if (f->kind == 'h')
			x = floor((double)count * fraction);
		else
			x = level * exp(1.2 * (f->set->bound[L->part] - 0.5)) * (0.85 + 0.3 * u4);
		g->v[k] = f64_bits(x);
	}
}

/* Start times (T), the scrape time (n) and uptime (u). */
static void time_values(const struct gen *g, const struct loc *L)
{
	int64_t start = g->o.start_ms + L->tg.offset_ms - (int64_t)(L->tg.uptime_s * 1000);

	for (uint32_t k = 0; k < g->scrapes; k++) {
		double x;

		if (g->restart[k])
			start = g->t[k] - 1234;
		if (L->fam->kind == 'T')
			x = floor((double)start / 10) / 100;
		else if (L->fam->kind == 'n')
			x = (double)g->t[k] / 1000;
		else
			x = (double)(g->t[k] - start) / 1000;
		g->v[k] = f64_bits(x);
	}
}

/* Marks the scrapes at which L's target restarts: target_init's one in the
 * first window of `samples` scrapes, then (periodic) one in 3% of the later
 * windows, so that a snapshot's values do not depend on the ones after it. */
static void mark_restarts(struct gen *g, const struct target *tg)
{
	uint32_t n = g->o.samples;

	memset(g->restart, 0, g->scrapes);
	if (tg->restart < n)
		g->restart[tg->restart] = 1;
	for (uint32_t w = n; n > 1 && w < g->scrapes; w += n) {
		uint64_t h = hash4(g->o.seed, TAG_RESTART, tg->number, w / n);
		uint32_t k = w + 1 + (uint32_t)((h >> 8) % (n - 1));

		if (h % 100 < 3 && k < g->scrapes)
			g->restart[k] = 1;
	}
}

static void gen_values(struct gen *g, const struct loc *L)
{
	static const double cores[] = { 0.01, 0.05, 0.1, 0.1, 0.2, 0.25, 0.5, 0.5, 1, 2 };
	static const double mib[] = { 64, 128, 256, 256, 512, 512, 768, 1024, 2048, 4096 };
	const struct cfam *f = L->fam;
	struct rng r = { hash4(g->o.seed, TAG_SERIES, L->index, 0) };
	double x = 0;

	for (uint32_t k = 0; k < g->scrapes; k++)
		g->t[k] = sample_time(g, &L->tg, k);
	mark_restarts(g, &L->tg);
	switch (f->kind) {
	case 'c': counter_values(g, L, &r, 1); return;
	case 's': counter_values(g, L, &r, 100); return;
	case 'f': counter_values(g, L, &r, 1e9); return;
	case 'F': float_counter_values(g, L, &r); return;
	case 'g': case 'G': case 'i': case 'm': gauge_values(g, L, &r); return;
	case 'h': case 'q': group_values(g, L); return;
	case 'T': case 'n': case 'u': time_values(g, L); return;
	case 'k': x = round(pow10_spread(&r, f->param, 1)); break;
	case 'S': x = (double)(L->tg.job->series - SCRAPE_SERIES); break;
	case 'C': x = floor((double)g->o.start_ms / 1000 - rng_range(&r, 3600, 90 * 86400.0)); break;
	case 'p': x = L->vidx[f->ndims - 1] == 0; break;
	case 'r':
		x = L->vidx[f->ndims - 1] == 0 ? cores[rng_below(&r, 10)] : mib[rng_below(&r, 10)] * 1048576;
		break;
	default: x = f->param; break;   /* '=' */
	}
	for (uint32_t k = 0; k < g->scrapes; k++)
		g->v[k] = f64_bits(x);
}

/* ---- the handle ---- */

void gen_opts_default(struct gen_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->samples = GEN_DEFAULT_SAMPLES;
	o->seed = 1;
	o->start_ms = GEN_DEFAULT_START_MS;
	o->interval_ms = GEN_DEFAULT_INTERVAL_MS;
	o->order = GEN_ORDER_SHUFFLE;
	o->step = GEN_DEFAULT_STEP;
}

static int check_opts(const struct gen_opts *o, struct err *e)
{
	if (o->series < 1 || o->series > GEN_MAX_SERIES)
		return err_set(e, SNAPARC_INVALID, "series must be 1..%llu", (unsigned long long)GEN_MAX_SERIES);
	if (o->samples < 1 || o->samples > XOR_MAX_SAMPLES)
		return err_set(e, SNAPARC_INVALID, "samples must be 1..%u", XOR_MAX_SAMPLES);
	if (o->interval_ms < 10 || o->interval_ms > 86400000)
		return err_set(e, SNAPARC_INVALID, "interval must be 10 ms .. 1 day");
	if (o->start_ms < -(1LL << 52) || o->start_ms > 1LL << 52)
		return err_set(e, SNAPARC_INVALID, "start time out of range (+-2^52 ms)");
	if (o->tombstones > o->series)
		return err_set(e, SNAPARC_INVALID, "tombstones (%llu) must not exceed series (%llu): one a series",
			       (unsigned long long)o->tombstones, (unsigned long long)o->series);
	if (o->exemplars > o->series * o->samples)
		return err_set(e, SNAPARC_INVALID, "exemplars must not exceed series x samples (%llu): a series "
			       "gets at most one a scrape", (unsigned long long)(o->series * o->samples));
	if (o->order != GEN_ORDER_SHUFFLE && o->order != GEN_ORDER_STRIPE)
		return err_set(e, SNAPARC_INVALID, "unknown order");
	if (o->periodic && o->step < 1)
		return err_set(e, SNAPARC_INVALID, "periodic: step must be at least 1 scrape");
	if (o->periodic && o->samples + (uint64_t)o->snapshot * o->step > GEN_MAX_SCRAPES)
		return err_set(e, SNAPARC_INVALID, "periodic: samples + snapshot x step must be at most %u scrapes",
			       GEN_MAX_SCRAPES);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Builds the labels of one whole cycle: every family fits 5..12 labels and
 * no two series share a label set (beyond the first cycle only addresses
 * and pod names change, and those are unique per target). */
static int self_check(struct gen *g, struct err *e)
{
	uint64_t n = g->pattern_first[PATTERN_LEN], dup = 0;
	uint64_t *hashes = malloc(n * sizeof(*hashes));
	struct gen_series s;
	struct loc L;
	int rc = 0;

	if (!hashes)
		return err_set(e, SNAPARC_NOMEM, "out of memory checking the catalog");
	for (uint64_t i = 0; i < n && !rc; i++) {
		locate(g, i, &L);
		rc = build_labels(g, &L, &s, e);
		hashes[i] = rec_label_array_hash(s.labels, s.nlabels);
	}
	if (!rc) {
		qsort(hashes, n, sizeof(*hashes), cmp_u64);
		for (uint64_t i = 1; i < n; i++)
			dup += hashes[i] == hashes[i - 1];
		if (dup)
			rc = err_set(e, SNAPARC_INVALID, "catalog: %llu label sets repeat in a cycle",
				     (unsigned long long)dup);
	}
	free(hashes);
	return rc;
}

int gen_open(struct gen **out, const struct gen_opts *opts, struct err *e)
{
	struct gen *g;
	uint64_t per_cycle;
	int rc = check_opts(opts, e);

	if (rc)
		return rc;
	g = calloc(1, sizeof(*g));
	if (!g)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	g->o = *opts;
	xor_enc_init(&g->xor);
	per_cycle = opts->exemplars / opts->samples + 1;
	g->scrapes = opts->samples + (opts->periodic ? opts->snapshot * opts->step : 0);
	g->t = malloc(g->scrapes * sizeof(*g->t));
	g->v = malloc(g->scrapes * sizeof(*g->v));
	g->restart = malloc(g->scrapes);
	g->ex = malloc((per_cycle < opts->series ? per_cycle : opts->series) * sizeof(*g->ex));
	if (!g->t || !g->v || !g->restart || !g->ex)
		rc = err_set(e, SNAPARC_NOMEM, "out of memory");
	if (!rc)
		rc = compile_sets(g, e);
	if (!rc)
		rc = compile_dims(g, e);
	if (!rc)
		rc = compile_jobs(g, e);
	if (!rc)
		rc = compile_pattern(g, e);
	if (!rc && g->oom)
		rc = err_set(e, SNAPARC_NOMEM, "out of memory building the catalog");
	if (!rc)
		rc = self_check(g, e);
	if (rc) {
		gen_close(g);
		return rc;
	}
	perm_init(&g->order, opts->series, hash4(opts->seed, TAG_ORDER, 0, 0));
	perm_init(&g->tomb_order, opts->series, hash4(opts->seed, TAG_TOMB_ORDER, 0, 0));
	*out = g;
	return 0;
}

void gen_close(struct gen *g)
{
	if (!g)
		return;
	while (g->arena) {
		struct block *next = g->arena->next;

		free(g->arena);
		g->arena = next;
	}
	free(g->t);
	free(g->v);
	free(g->restart);
	free(g->ex);
	xor_enc_free(&g->xor);
	buf_free(&g->labels);
	free(g);
}

uint64_t gen_cycle_series(const struct gen *g) { return g->pattern_first[PATTERN_LEN]; }
unsigned gen_cycle_targets(const struct gen *g) { (void)g; return PATTERN_LEN; }

#define STRIPES 16384   /* tsdb.DefaultStripeSize */

/* Position pos in 2.42's order: stripe s holds the refs r with r & 16383 == s. */
static uint64_t stripe_ref(const struct gen *g, uint64_t pos)
{
	uint64_t n = g->o.series, q = n / STRIPES, rem = n % STRIPES, s, j, count;
	struct perm p;

	if (pos < q) {
		s = 0, j = pos, count = q;
	} else if ((pos -= q) < rem * (q + 1)) {
		s = 1 + pos / (q + 1), j = pos % (q + 1), count = q + 1;
	} else {
		pos -= rem * (q + 1);
		s = rem + 1 + pos / q, j = pos % q, count = q;
	}
	perm_init(&p, count, hash4(g->o.seed, TAG_STRIPE, s, 0));
	j = perm_apply(&p, j);
	return s == 0 ? STRIPES * (j + 1) : s + STRIPES * j;
}

uint64_t gen_index_at(const struct gen *g, uint64_t pos)
{
	if (g->o.order == GEN_ORDER_STRIPE)
		return stripe_ref(g, pos) - 1;
	return perm_apply(&g->order, pos);
}

int gen_labels(struct gen *g, uint64_t index, struct gen_series *out, struct err *e)
{
	struct loc L;
	int rc;

	if (index >= g->o.series)
		return err_set(e, SNAPARC_INVALID, "series index %llu is not below %llu", (unsigned long long)index,
			       (unsigned long long)g->o.series);
	locate(g, index, &L);
	if ((rc = build_labels(g, &L, out, e)))
		return rc;
	out->kind = kind_name(&L);
	return 0;
}

int gen_series(struct gen *g, uint64_t index, struct gen_series *out, struct err *e)
{
	uint32_t first = 0, last = g->scrapes - 1;
	struct loc L;
	int rc;

	if (index >= g->o.series)
		return err_set(e, SNAPARC_INVALID, "series index %llu is not below %llu", (unsigned long long)index,
			       (unsigned long long)g->o.series);
	locate(g, index, &L);
	if ((rc = build_labels(g, &L, out, e)))
		return rc;
	out->kind = kind_name(&L);
	gen_values(g, &L);
	if (g->o.periodic) {   /* the open chunk: from the last cut */
		uint64_t phase = hash4(g->o.seed, TAG_PHASE, index, 0) % g->o.samples;

		first = last - (uint32_t)((last + phase) % g->o.samples);
	}
	out->nsamples = last + 1 - first;
	out->t = g->t + first;
	out->v = g->v + first;
	return 0;
}

int gen_series_encode(struct gen *g, const struct gen_series *s, struct buf *out, struct err *e)
{
	struct rec_series rs;
	size_t chunk_len;

	if (!s->nsamples)
		return err_set(e, SNAPARC_INVALID, "series ref %llu has no samples (from gen_labels?)",
			       (unsigned long long)s->ref);
	xor_enc_free(&g->xor);
	for (size_t k = 0; k < s->nsamples; k++)
		if (xor_enc_append(&g->xor, s->t[k], s->v[k]))
			return err_set(e, SNAPARC_NOMEM, "out of memory encoding a chunk");
	buf_reset(&g->labels);
	rec_labels_encode(&g->labels, s->labels, s->nlabels);
	memset(&rs, 0, sizeof(rs));
	rs.ref = s->ref;
	rs.labels.raw = g->labels.p;
	rs.labels.raw_len = g->labels.len;
	rs.labels.count = (uint32_t)s->nlabels;
	rs.has_chunk = 1;
	rs.mint = s->t[0];
	rs.maxt = s->t[s->nsamples - 1];
	rs.encoding = CHUNK_XOR;
	rs.chunk = xor_enc_bytes(&g->xor, &chunk_len);
	rs.chunk_len = chunk_len;
	rs.last_value = s->v[s->nsamples - 1];   /* tail NULL: 3 zero pairs, (0, last value) */
	rec_series_encode(out, &rs);
	if (out->oom || g->labels.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory encoding series ref %llu", (unsigned long long)s->ref);
	return 0;
}

int gen_series_record(struct gen *g, uint64_t index, struct buf *out, struct err *e)
{
	struct gen_series s;
	int rc = gen_series(g, index, &s, e);

	return rc ? rc : gen_series_encode(g, &s, out, e);
}

/* ---- tombstones and exemplars ---- */

/* What the delete_series API stores without start/end (timestamp.FromTime
 * of its minTime and maxTime). */
#define API_MIN_MS (-9223309901257974000LL)
#define API_MAX_MS 9223309901257974999LL

void gen_tombstone(const struct gen *g, uint64_t j, struct rec_interval *out)
{
	uint64_t index = perm_apply(&g->tomb_order, j);
	struct rng r = { hash4(g->o.seed, TAG_TOMB, index, 0) };
	int64_t t0, span, a;
	struct loc L;

	out->ref = index + 1;
	if (rng_unit(&r) < 0.3) {
		out->mint = API_MIN_MS;
		out->maxt = API_MAX_MS;
		return;
	}
	locate(g, index, &L);
	t0 = sample_time(g, &L.tg, 0);
	span = sample_time(g, &L.tg, g->o.samples - 1) - t0;
	a = t0 + (int64_t)(rng_unit(&r) * 0.6 * (double)span);
	a -= ((a % 1000) + 1000) % 1000;   /* whole seconds, as API callers give */
	out->mint = a;
	out->maxt = a + 1000 * (1 + (int64_t)rng_below(&r, (uint64_t)(span * 4 / 10000) + 1));
}

static double exemplar_value(const struct loc *L, struct rng *r)
{
	const struct cset *s = L->fam->set;
	double lo, hi;

	if (L->fam->kind != 'h')
		return 1;
	lo = L->part ? s->bound[L->part - 1] : 0;
	hi = s->bound[L->part];
	if (isinf(hi))
		return (lo > 0 ? lo : 1) * (1 + 2 * rng_unit(r));
	return hi - (hi - lo) * rng_unit(r);   /* in (lo, hi] */
}

static int cmp_exemplar(const void *a, const void *b)
{
	const struct gen_exemplar *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->ref < y->ref ? -1 : x->ref > y->ref;
}

/* The exemplars of scrape cycle k, on distinct series: capable ones first,
 * any others only when there are not enough. */
static void fill_cycle(struct gen *g, uint32_t k)
{
	/* the scrape: a periodic snapshot holds the newest `samples` of them */
	uint32_t a = g->scrapes - g->o.samples + k;
	uint64_t want = g->o.exemplars / g->o.samples + (a % g->o.samples < g->o.exemplars % g->o.samples);
	struct perm p;
	struct loc L;

	perm_init(&p, g->o.series, hash4(g->o.seed, TAG_EXEMPLAR_PICK, a, 0));
	g->ex_n = g->ex_pos = 0;
	for (int pass = 0; pass < 2 && g->ex_n < want; pass++) {
		for (uint64_t j = 0; j < g->o.series && g->ex_n < want; j++) {
			struct gen_exemplar *x = &g->ex[g->ex_n];
			struct rng r;

			locate(g, perm_apply(&p, j), &L);
			if (exemplar_capable(&L) != (pass == 0))
				continue;
			r.s = hash4(g->o.seed, TAG_EXEMPLAR, a, g->ex_n);
			x->ref = L.index + 1;
			x->t = sample_time(g, &L.tg, a);
			x->value = exemplar_value(&L, &r);
			snprintf(x->trace_id, sizeof(x->trace_id), "%016llx%016llx", (unsigned long long)rng_next(&r),
				 (unsigned long long)rng_next(&r));
			g->ex_n++;
		}
	}
	qsort(g->ex, g->ex_n, sizeof(*g->ex), cmp_exemplar);
}

size_t gen_exemplars_next(struct gen *g, struct gen_exemplar *out, size_t cap)
{
	size_t n = 0;

	while (n < cap) {
		if (g->ex_pos == g->ex_n) {
			if (g->ex_cycle >= g->o.samples || !g->o.exemplars)
				break;
			fill_cycle(g, g->ex_cycle++);
			continue;
		}
		out[n++] = g->ex[g->ex_pos++];
	}
	return n;
}

void gen_exemplars_rewind(struct gen *g)
{
	g->ex_cycle = 0;
	g->ex_n = g->ex_pos = 0;
}

int gen_exemplars_encode(const struct gen_exemplar *x, size_t n, struct buf *out, struct err *e)
{
	struct rec_exemplar *rx = malloc((n ? n : 1) * sizeof(*rx));
	struct buf labels = { 0 };
	int rc = 0;

	if (!rx)
		return err_set(e, SNAPARC_NOMEM, "out of memory encoding exemplars");
	for (size_t i = 0; i < n; i++) {
		struct rec_label l = { "trace_id", x[i].trace_id, 8, strlen(x[i].trace_id) };
		size_t start = labels.len;

		rec_labels_encode(&labels, &l, 1);
		rx[i].ref = x[i].ref;
		rx[i].t = x[i].t;
		rx[i].value = f64_bits(x[i].value);
		rx[i].labels.raw_len = labels.len - start;   /* placed below: labels may move */
		rx[i].labels.count = 1;
	}
	if (!labels.oom) {
		size_t at = 0;

		for (size_t i = 0; i < n; i++) {
			rx[i].labels.raw = labels.p + at;
			at += rx[i].labels.raw_len;
		}
		rec_exemplars_encode(out, rx, n);
	}
	if (labels.oom || out->oom)
		rc = err_set(e, SNAPARC_NOMEM, "out of memory encoding exemplars");
	buf_free(&labels);
	free(rx);
	return rc;
}
