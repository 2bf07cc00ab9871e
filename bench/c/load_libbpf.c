/* libbpf baseline of bench/bench_load.py: open + load + close one BPF object file.
 *
 *   load_libbpf OBJ ITERS [WARMUP [WARM_OBJ]]
 *
 * Runs WARMUP untimed loads (default 1: libbpf's kernel feature probes run once per
 * process and are cached) of WARM_OBJ (default OBJ: a cheaper object can warm up for a
 * slow one), then ITERS timed loads of OBJ, each bpf_object__open_file +
 * bpf_object__load + bpf_object__close, timed with clock_gettime(CLOCK_MONOTONIC).
 * Prints "load_ns v1 v2 ..." (one value per load) and, on the next line,
 * "open_ns ..." (the open part alone, for reference). libbpf's log output is silenced
 * unless LOAD_LIBBPF_VERBOSE is set. Exits 2 if a load fails. */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int verbose;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (!verbose && level != LIBBPF_WARN)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* One open + load + close; returns the total ns and stores the open part in *open_ns. */
static uint64_t load_once(const char *path, uint64_t *open_ns)
{
	uint64_t t0 = now_ns();
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	long err = libbpf_get_error(obj);
	if (err) {
		fprintf(stderr, "bpf_object__open_file(%s): %s\n", path, strerror((int)-err));
		exit(2);
	}
	uint64_t t1 = now_ns();
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_object__load(%s): %s\n", path, strerror((int)-err));
		bpf_object__close(obj);
		exit(2);
	}
	bpf_object__close(obj);
	uint64_t t2 = now_ns();
	if (open_ns)
		*open_ns = t1 - t0;
	return t2 - t0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s OBJ ITERS [WARMUP [WARM_OBJ]]\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	long iters = strtol(argv[2], NULL, 10);
	long warm = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
	const char *warm_path = argc > 4 ? argv[4] : path;
	verbose = getenv("LOAD_LIBBPF_VERBOSE") != NULL;
	libbpf_set_print(print_fn);
	if (iters < 1)
		iters = 1;
	uint64_t *tot = calloc((size_t)iters, sizeof(*tot));
	uint64_t *opn = calloc((size_t)iters, sizeof(*opn));
	if (!tot || !opn)
		return 2;
	for (long i = 0; i < warm; i++)
		load_once(warm_path, NULL);
	for (long i = 0; i < iters; i++)
		tot[i] = load_once(path, &opn[i]);
	printf("load_ns");
	for (long i = 0; i < iters; i++)
		printf(" %llu", (unsigned long long)tot[i]);
	printf("\nopen_ns");
	for (long i = 0; i < iters; i++)
		printf(" %llu", (unsigned long long)opn[i]);
	printf("\n");
	free(tot);
	free(opn);
	return 0;
}
