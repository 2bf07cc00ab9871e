/* libbpf baseline of bench/bench_events.py: consume a ring buffer (ring_buffer__consume)
 * or per-CPU perf rings (perf_buffer__consume) that the Python side filled.
 *
 *   events_libbpf RINGBUF_FD MIXED_FD PERF_FD PERF_PAGES
 *
 * The map fds are inherited from the Python process, which drives this one over stdin,
 * one command a line, and reads one answer line per command on stdout:
 *   ring          -> "N NS": ring_buffer__consume() of everything in RINGBUF_FD's ring
 *   mixed         -> "N NS": the same for MIXED_FD's ring
 *   perf_open     -> "ok": perf_buffer__new() (stores its perf events in the map)
 *   perf          -> "N NS": perf_buffer__consume()
 *   perf_close    -> "ok": perf_buffer__free()
 *   produce PROG_FD RUNS MS CPU PERIOD -> "N NS": the producer of the live row: on CPU
 *                    (-1: where it is), every PERIOD ms one BPF_PROG_TEST_RUN of PROG_FD
 *                    with repeat=RUNS, for MS milliseconds (N: test runs made, NS: time)
 * N is the number of records the callback saw, NS the time in ns (CLOCK_MONOTONIC). The
 * callbacks read the record's first 8 bytes (the Python side copies every record). */
#define _GNU_SOURCE
#include <sched.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
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

static uint64_t count, sum;

static int on_ring(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size >= 8)
		sum += *(uint64_t *)data;
	count++;
	return 0;
}

static void on_sample(void *ctx, int cpu, void *data, uint32_t size)
{
	(void)ctx;
	(void)cpu;
	if (size >= 8)
		sum += *(uint64_t *)data;
	count++;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	(void)fmt;
	(void)args;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s RINGBUF_FD MIXED_FD PERF_FD PERF_PAGES\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	int ring_fd = atoi(argv[1]), mixed_fd = atoi(argv[2]), perf_fd = atoi(argv[3]);
	size_t pages = (size_t)atol(argv[4]);
	struct ring_buffer *rb = ring_buffer__new(ring_fd, on_ring, NULL, NULL);
	struct ring_buffer *mixed = ring_buffer__new(mixed_fd, on_ring, NULL, NULL);
	if (!rb || !mixed) {
		fprintf(stderr, "ring_buffer__new failed\n");
		return 2;
	}
	struct perf_buffer *pb = NULL;
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "ring", 4) == 0 || strncmp(line, "mixed", 5) == 0) {
			count = 0;
			uint64_t t0 = now_ns();
			int n = ring_buffer__consume(line[0] == 'r' ? rb : mixed);
			uint64_t t1 = now_ns();
			if (n < 0) {
				fprintf(stderr, "ring_buffer__consume: %d\n", n);
				return 2;
			}
			printf("%llu %llu\n", (unsigned long long)count, (unsigned long long)(t1 - t0));
		} else if (strncmp(line, "produce", 7) == 0) {
			int prog_fd, runs, ms, cpu, period;
			if (sscanf(line + 7, "%d %d %d %d %d", &prog_fd, &runs, &ms, &cpu,
				   &period) != 5) {
				fprintf(stderr, "usage: produce PROG_FD RUNS MS CPU PERIOD\n");
				return 2;
			}
			cpu_set_t old, set;
			sched_getaffinity(0, sizeof(old), &old);
			if (cpu >= 0) {
				CPU_ZERO(&set);
				CPU_SET(cpu, &set);
				sched_setaffinity(0, sizeof(set), &set);
			}
			char pkt[64] = {0};
			LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt,
				    .data_size_in = sizeof(pkt), .repeat = runs);
			uint64_t t0 = now_ns(), next = t0;
			unsigned long long n = 0;
			while (now_ns() - t0 < (uint64_t)ms * 1000000ull) {
				if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) {
					fprintf(stderr, "bpf_prog_test_run_opts failed\n");
					return 2;
				}
				n++;
				next += (uint64_t)period * 1000000ull;
				uint64_t now = now_ns();
				if (next > now) {
					struct timespec ts = { (time_t)((next - now) / 1000000000ull),
							       (long)((next - now) % 1000000000ull) };
					nanosleep(&ts, NULL);
				}
			}
			printf("%llu %llu\n", n, (unsigned long long)(now_ns() - t0));
			sched_setaffinity(0, sizeof(old), &old);
		} else if (strncmp(line, "perf_open", 9) == 0) {
			pb = perf_buffer__new(perf_fd, pages, on_sample, NULL, NULL, NULL);
			if (!pb) {
				fprintf(stderr, "perf_buffer__new failed\n");
				return 2;
			}
			printf("ok\n");
		} else if (strncmp(line, "perf_close", 10) == 0) {
			perf_buffer__free(pb);
			pb = NULL;
			printf("ok\n");
		} else if (strncmp(line, "perf", 4) == 0 && pb) {
			count = 0;
			uint64_t t0 = now_ns();
			int n = perf_buffer__consume(pb);
			uint64_t t1 = now_ns();
			if (n < 0) {
				fprintf(stderr, "perf_buffer__consume: %d\n", n);
				return 2;
			}
			printf("%llu %llu\n", (unsigned long long)count, (unsigned long long)(t1 - t0));
		} else {
			fprintf(stderr, "unknown command: %s", line);
			return 2;
		}
		fflush(stdout);
	}
	ring_buffer__free(rb);
	ring_buffer__free(mixed);
	if (sum == 42)
		fprintf(stderr, "\n"); /* keep sum alive */
	return 0;
}
