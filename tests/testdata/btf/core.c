/* CO-RE relocations of every kind clang 14 knows; built by the Makefile beside it. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

enum task_state { TASK_RUNNING = 0, TASK_DEAD = 64 };

struct mm_struct {
	unsigned long start_code;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	unsigned int flags : 4;
	unsigned int prio : 12;
	struct mm_struct *mm;
	struct task_struct *parent;
	char comm[16];
} __attribute__((preserve_access_index));

typedef struct task_struct task_t;

__u64 out[16];

SEC("tp_btf/sched_switch")
int on_switch(__u64 *ctx)
{
	struct task_struct *t = (void *)ctx[1];

	out[0] = BPF_CORE_READ(t, parent, pid);
	out[1] = bpf_core_field_exists(t->mm);
	out[2] = bpf_core_field_size(t->comm);
	out[3] = BPF_CORE_READ_BITFIELD_PROBED(t, prio);
	out[4] = bpf_core_type_exists(struct mm_struct);
	out[5] = bpf_core_type_size(task_t);
	out[6] = bpf_core_type_id_local(struct task_struct);
	out[7] = bpf_core_type_id_kernel(struct task_struct);
	out[8] = bpf_core_enum_value_exists(enum task_state, TASK_DEAD);
	out[9] = bpf_core_enum_value(enum task_state, TASK_DEAD);
	out[10] = BPF_CORE_READ(t, mm, start_code);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
