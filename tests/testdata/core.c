// CO-RE: field offsets in kernel structures, relocated at load time against this kernel.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// Only the fields we use, with their real names: CO-RE finds them in the running kernel.
struct task_struct {
	int pid;
	int tgid;
	int field_that_does_not_exist;
} __attribute__((preserve_access_index));

// Returns the calling thread group's id (our process id) read from task_struct, and adds
// 1000000 if CO-RE claims a field exists that the kernel does not have.
SEC("raw_tp/sys_enter")
int read_tgid(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int tgid = BPF_CORE_READ(task, tgid);
	if (bpf_core_field_exists(task->field_that_does_not_exist))
		tgid += 1000000;
	return tgid;
}

// A BTF-enabled tracepoint: the loader finds "btf_trace_sys_enter" in the kernel's BTF.
SEC("tp_btf/sys_enter")
int on_sys_enter(__u64 *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
