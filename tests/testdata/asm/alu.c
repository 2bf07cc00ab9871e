/* Every ALU and ALU64 instruction, written in clang's BPF assembly so the encodings come
 * from LLVM, not from purebpf. Built by the Makefile; see tests/unit/test_asm_objects.py. */
#define SEC(name) __attribute__((section(name), used))

SEC("xdp") int alu64(void *ctx)
{
	asm volatile(
		"r0 = 0\n r1 = -1\n r2 = 2147483647\n r3 = -2147483648\n r0 = r1\n"
		"r0 += 1\n r0 += r1\n r0 -= 2\n r0 -= r2\n r0 *= 3\n r0 *= r3\n"
		"r0 /= 4\n r0 /= r4\n r0 s/= -5\n r0 s/= r5\n r0 %%= 6\n r0 %%= r6\n"
		"r0 s%%= 7\n r0 s%%= r7\n r0 |= 8\n r0 |= r8\n r0 &= 9\n r0 &= r9\n"
		"r0 <<= 10\n r0 <<= r1\n r0 >>= 11\n r0 >>= r2\n r0 s>>= 12\n r0 s>>= r3\n"
		"r0 ^= 13\n r0 ^= r4\n r0 = -r0\n r1 = -r1\n"
		"r0 = (s8)r1\n r2 = (s16)r3\n r4 = (s32)r5\n"
		"r1 = r10\n r9 = r0\n"
		::: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9");
	return 0;
}

SEC("xdp") int alu32(void *ctx)
{
	asm volatile(
		"w0 = 0\n w1 = -1\n w2 = w3\n w0 += 1\n w0 += w1\n w0 -= 2\n w0 -= w2\n"
		"w0 *= 3\n w0 *= w3\n w0 /= 4\n w0 /= w4\n w0 s/= -5\n w0 s/= w5\n"
		"w0 %%= 6\n w0 %%= w6\n w0 s%%= 7\n w0 s%%= w7\n w0 |= 8\n w0 |= w8\n"
		"w0 &= 9\n w0 &= w9\n w0 <<= 10\n w0 <<= w1\n w0 >>= 11\n w0 >>= w2\n"
		"w0 s>>= 12\n w0 s>>= w3\n w0 ^= 13\n w0 ^= w4\n w0 = -w0\n"
		"w0 = (s8)w1\n w2 = (s16)w3\n"
		::: "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9");
	return 0;
}

SEC("xdp") int endian(void *ctx)
{
	asm volatile(
		"r0 = le16 r0\n r1 = le32 r1\n r2 = le64 r2\n"
		"r0 = be16 r0\n r1 = be32 r1\n r2 = be64 r2\n"
		"r3 = bswap16 r3\n r4 = bswap32 r4\n r5 = bswap64 r5\n"
		"r0 = addr_space_cast(r1, 0, 1)\n r2 = addr_space_cast(r3, 1, 0)\n"
		::: "r0", "r1", "r2", "r3", "r4", "r5");
	return 0;
}

/* What clang makes of ordinary C at -mcpu=v4: sign extension, signed division, bswap. */
SEC("xdp") int arith(int *ctx)
{
	long a = ctx[0], b = ctx[1];
	signed char c = (signed char)ctx[2];
	short s = (short)ctx[3];

	a = a / (b | 1) + a % (b | 1);
	a += (long)c * s;
	a ^= __builtin_bswap64(a) >> 3;
	a -= __builtin_bswap32((unsigned int)b) << 2;
	return (int)(a - (a >> 60));
}
