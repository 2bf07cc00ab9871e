// Programs for tracing hooks: tracepoints, raw tracepoints, BTF tracepoints, fentry/fexit,
// kprobes, uprobes, LSM and iterators. Each counts the events of one process (target_pid,
// set by the test after loading) in its own slot of the "counts" array.
#ifndef __TARGET_ARCH_x86
#define __TARGET_ARCH_x86
#endif
#include <linux/bpf.h>
#include <asm/unistd.h>
#include <bpf/bpf_helpers.h>

// x86-64's user-space register layout (what bpf_tracing.h reads for __TARGET_ARCH_x86).
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi;
	unsigned long orig_rax, rip, cs, eflags, rsp, ss;
};

#include <bpf/bpf_tracing.h>

enum { TP, RAW_TP, TP_BTF, FENTRY, FEXIT, KPROBE, KRETPROBE, UPROBE, URETPROBE, LSM,
       GENERIC_TP, SLOTS = 16 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

// An array for the map-element iterator to print.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} shown SEC(".maps");

volatile __u32 target_pid;
volatile __u64 deny_ino;

static __always_inline int mine(void)
{
	return target_pid && (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);
	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("tp/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	if (mine())
		add(TP, 1);
	return 0;
}

// No hook in the section name: attached with attach_tracepoint(prog, category, name).
SEC("tracepoint")
int tp_any(void *ctx)
{
	if (mine())
		add(GENERIC_TP, 1);
	return 0;
}

// sys_enter(struct pt_regs *regs, long id): count getpid calls only.
SEC("raw_tp/sys_enter")
int raw_sys_enter(__u64 *ctx)
{
	if (mine() && ctx[1] == __NR_getpid)
		add(RAW_TP, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int btf_sys_enter(__u64 *ctx)
{
	if (mine() && ctx[1] == __NR_getpid)
		add(TP_BTF, 1);
	return 0;
}

SEC("fentry/__x64_sys_getpgid")
int enter_getpgid(void *ctx)
{
	if (mine())
		add(FENTRY, 1);
	return 0;
}

SEC("fexit/__x64_sys_getpgid")
int exit_getpgid(void *ctx)
{
	if (mine())
		add(FEXIT, 1);
	return 0;
}

SEC("kprobe/__x64_sys_getpgid")
int kprobe_getpgid(struct pt_regs *ctx)
{
	if (mine())
		add(KPROBE, 1);
	return 0;
}

SEC("kretprobe/__x64_sys_getpgid")
int kretprobe_getpgid(struct pt_regs *ctx)
{
	if (mine())
		add(KRETPROBE, 1);
	return 0;
}

// Attached to a function of a user-space binary: counts the calls ...
SEC("uprobe")
int BPF_KPROBE(on_call, int a, int b)
{
	if (mine())
		add(UPROBE, 1);
	return 0;
}

// ... and adds up what it returned.
SEC("uretprobe")
int BPF_KRETPROBE(on_return, int ret)
{
	if (mine())
		add(URETPROBE, ret);
	return 0;
}

struct inode {
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

// Refuses (EPERM) opening the file whose inode number is deny_ino, for target_pid only.
SEC("lsm/file_open")
int BPF_PROG(deny_open, struct file *file)
{
	if (!mine() || !deny_ino || file->f_inode->i_ino != deny_ino)
		return 0;
	add(LSM, 1);
	return -1;  // -EPERM
}

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map_elem {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	void *key;
	void *value;
} __attribute__((preserve_access_index));

// One line per BPF map in the system: "map <id>".
SEC("iter/bpf_map")
int dump_maps(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "map %u\n", map->id);
	return 0;
}

// One line per element of the map given at attach time: "<key>=<value>".
SEC("iter/bpf_map_elem")
int dump_elems(struct bpf_iter__bpf_map_elem *ctx)
{
	__u32 *key = ctx->key;
	__u64 *value = ctx->value;

	if (!key || !value)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "%u=%llu\n", *key, *value);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
