/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_fork.c - attacks on iovm/mp.h's fork rule: "a child
 * inherits nothing of a shared or attached context (its mappings are not
 * copied); any call on its parent's context fails with EPERM, or touches
 * memory the child does not have". Every call, on an owner's and on an
 * attached context, each in its own grandchild so that a crash is seen
 * as one; the parent's share unchanged afterwards; a process that
 * attaches, forks and dies; and fork+exec of this program, which attaches
 * at another address layout with nothing of its parent's left open.
 */
#include <fcntl.h>

#include "attack4_mp.h"

#define HEAP (UINT64_C(4) << 20)

static struct iovm_ctx *g_ctx; /* the parent's, in the child */
static uint8_t *g_block;       /* a block of the parent's */
static uint64_t g_block_pa;
static const struct iovm_zone *g_zone;
static const char *g_name;

enum { REFUSED = 10, SUCCEEDED = 11, OTHER = 12 };

/* What the call said, for the report: the grandchild prints it. */
static int ret_code(long long r)
{
	if (r != -EPERM)
		printf("#   it returned %lld (%s) [%s]\n", r, r < 0 ? strerror((int)-r) : "-", iovm_error_detail());
	return r == -EPERM ? REFUSED : r >= 0 ? SUCCEEDED : OTHER;
}

static int ptr_code(const void *p)
{
	if (!p && errno != EPERM)
		printf("#   it returned NULL, errno %d (%s) [%s]\n", errno, strerror(errno), iovm_error_detail());
	return p ? SUCCEEDED : errno == EPERM ? REFUSED : OTHER;
}

static int call_alloc(void) { errno = 0; return ptr_code(iovm_dma_alloc(g_ctx, 64, 0, 0)); }
static int call_zalloc(void) { errno = 0; return ptr_code(iovm_dma_zalloc(g_ctx, 64, 0, IOVM_DMA_KEEP)); }
static int call_realloc(void) { errno = 0; return ptr_code(iovm_dma_realloc(g_ctx, g_block, 99999, 0, 0)); }
static int call_free(void) { return ret_code(iovm_dma_free(g_ctx, g_block)); }
static int call_size(void)
{
	errno = 0;
	size_t s = iovm_dma_size(g_ctx, g_block);

	return s ? SUCCEEDED : errno == EPERM ? REFUSED : OTHER;
}
static int call_trim(void) { return ret_code(iovm_dma_trim(g_ctx, IOVM_TRIM_ALL)); }
static int call_zone_reserve(void)
{
	const struct iovm_zone *z;

	return ret_code(iovm_zone_reserve(g_ctx, "a4-forked", 4096, 0, 0, &z));
}
static int call_zone_lookup(void)
{
	const struct iovm_zone *z;

	return ret_code(iovm_zone_lookup(g_ctx, "a4-parent", &z));
}
static int call_zone_free(void) { return ret_code(iovm_zone_free(g_ctx, g_zone)); }
static int walk_fn(void *arg, const struct iovm_zone *z) { (void)arg; (void)z; return 0; }
static int call_zone_walk(void) { return ret_code(iovm_zone_walk(g_ctx, walk_fn, NULL)); }
static int call_info(void)
{
	struct iovm_share_info in;

	return ret_code(iovm_share_info(g_ctx, &in));
}
static int call_reap(void) { return ret_code(iovm_share_reap(g_ctx)); }
static int call_check(void) { return ret_code(iovm_share_check(g_ctx)); }
/* -EBUSY (shared already) is as good a refusal as EPERM here. */
static int call_share(void)
{
	int r = iovm_share(g_ctx, "a4-forked-share", NULL);

	return r == -EBUSY ? REFUSED : ret_code(r);
}
static int call_stats(void)
{
	struct iovm_mem_stats st;

	return ret_code(iovm_mem_stats(g_ctx, &st));
}
static int call_read_block(void) { return g_block[0] == 0x5a ? SUCCEEDED : OTHER; }
static int call_write_block(void) { g_block[1] = 0; return SUCCEEDED; }
/* The lock-free translations read tables the child inherited: see the note they print. */
static int call_pa(void)
{
	iovm_pa_t pa;

	return ret_code(iovm_dma_pa(g_ctx, g_block, &pa));
}
static int call_ptr(void) { errno = 0; return ptr_code(iovm_dma_ptr(g_ctx, IOVM_PA(g_block_pa))); }
static int call_close(void) { iovm_close(g_ctx); return REFUSED; /* it returns 0 by contract */ }

struct probe {
	const char *what;
	int (*fn)(void);
	bool soft; /* a success is a note, not a broken promise (see the report) */
};

static const struct probe probes[] = {
	{ "iovm_dma_alloc", call_alloc, false },
	{ "iovm_dma_zalloc(KEEP)", call_zalloc, false },
	{ "iovm_dma_realloc", call_realloc, false },
	{ "iovm_dma_free", call_free, false },
	{ "iovm_dma_size", call_size, false },
	{ "iovm_dma_trim", call_trim, false },
	{ "iovm_zone_reserve", call_zone_reserve, false },
	{ "iovm_zone_lookup", call_zone_lookup, false },
	{ "iovm_zone_free", call_zone_free, false },
	{ "iovm_zone_walk", call_zone_walk, false },
	{ "iovm_share_info", call_info, false },
	{ "iovm_share_reap", call_reap, false },
	{ "iovm_share_check", call_check, false },
	{ "iovm_share", call_share, false },
	{ "iovm_mem_stats", call_stats, true },
	{ "read of the parent's block", call_read_block, false },
	{ "write of the parent's block", call_write_block, false },
	{ "iovm_dma_pa", call_pa, true },
	{ "iovm_dma_ptr", call_ptr, true },
	{ "iovm_close", call_close, false },
};

/* Run @p in a grandchild of a fresh child of the parent: its outcome. */
static int run_probe(const struct probe *p)
{
	pid_t pid = a4_fork();
	int st;

	if (!pid) {
		int code;

		alarm(30);
		code = p->fn();
		fflush(NULL);
		_exit(code);
	}
	st = a4_wait_deadline(pid, 40);
	return st;
}

static void parent_unchanged(struct iovm_ctx *ctx, struct iovm_share_info *before, const char *what)
{
	struct iovm_share_info now = share_info(ctx);
	const struct iovm_zone *z;

	EXPECT_MSG(now.blocks == before->blocks && now.heap_free == before->heap_free,
		   "after a child's %s on the parent's context: blocks %llu -> %llu, free %llu -> %llu", what,
		   (unsigned long long)before->blocks, (unsigned long long)now.blocks,
		   (unsigned long long)before->heap_free, (unsigned long long)now.heap_free);
	EXPECT_MSG(now.processes == before->processes, "after a child's %s: processes %u -> %u", what,
		   before->processes, now.processes);
	EXPECT_MSG(now.zones == before->zones, "after a child's %s: zones %u -> %u", what, before->zones,
		   now.zones);
	EXPECT_MSG(iovm_dma_size(ctx, g_block) >= 4096 && g_block[0] == 0x5a && g_block[1] == 0x5a,
		   "after a child's %s: the parent's block changed", what);
	EXPECT_MSG(iovm_zone_lookup(ctx, "a4-parent", &z) == 0 && z == g_zone,
		   "after a child's %s: the parent's zone changed", what);
	CHECK_RET(iovm_share_check(ctx), 0);
}

static void probe_all(struct iovm_ctx *ctx, const char *whose)
{
	struct iovm_share_info before;

	g_ctx = ctx;
	g_block = iovm_dma_alloc(ctx, 4096, 0, 0);
	CHECK(g_block != NULL);
	memset(g_block, 0x5a, 4096);
	g_block_pa = a4_pa(ctx, g_block);
	CHECK_RET(iovm_zone_reserve(ctx, "a4-parent", 4096, 0, 0, &g_zone), 0);
	before = share_info(ctx);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const struct probe *p = &probes[i];
		int st = run_probe(p);
		/* Under AddressSanitizer a fault aborts (abort_on_error); ThreadSanitizer reports it and exits 66. */
		bool crashed = st == -SIGSEGV || st == -SIGBUS || (TEST_ASAN && st == -SIGABRT) || (TEST_TSAN && st == 66);

		if (st == SUCCEEDED && p->soft)
			printf("# note: a forked child's %s on its parent's %s context succeeds\n", p->what,
			       whose);
		else
			EXPECT_MSG(st == REFUSED || crashed,
				   "a forked child's %s on its parent's %s context: %s", p->what, whose,
				   st == SUCCEEDED ? "succeeded" :
				   st == OTHER ? "failed, but not with EPERM" :
				   st == 1000 ? "hung" : "died another way");
		if (st != REFUSED && st != SUCCEEDED && st != OTHER && !crashed)
			printf("#   (%s ended with %d)\n", p->what, st);
		parent_unchanged(ctx, &before, p->what);
	}
	CHECK_RET(iovm_zone_free(ctx, g_zone), 0);
	CHECK_RET(iovm_dma_free(ctx, g_block), 0);
}

TEST(child_of_owner)
{
	struct iovm_ctx *own;
	uint64_t free0;

	g_name = share_name("a4fork-own");
	own = a4_share(g_name, HEAP);
	free0 = share_info(own).heap_free;
	probe_all(own, "owner");
	/* After all that, the share still serves attachments. */
	{
		pid_t pid = a4_fork();

		if (!pid) {
			struct iovm_ctx *att = a4_attach(g_name);

			CHECK_OK(iovm_close(att));
			a4_child_exit();
		}
		EXPECT_EQ(a4_wait(pid), 0);
	}
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));
}

TEST(child_of_attached)
{
	struct iovm_ctx *own, *att;
	uint64_t free0;

	g_name = share_name("a4fork-att");
	own = a4_share(g_name, HEAP);
	free0 = share_info(own).heap_free;
	att = a4_attach(g_name);
	probe_all(att, "attached");
	CHECK_OK(iovm_close(att));
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));
}

/*
 * A process attaches, allocates, forks a child that lives on, and is
 * killed: its memory is reaped though the child holds whatever it
 * inherited; the child then attaches on its own.
 */
struct ctl {
	_Atomic uint64_t ready, go;
	_Atomic uint64_t child_pid;
	_Atomic int64_t res;
};

static void spin_until(_Atomic uint64_t *v, uint64_t want)
{
	unsigned long n = 0;

	while (atomic_load(v) < want) {
		usleep(50);
		CHECK_MSG(++n < 600000ul, "waited half a minute for another process");
	}
}

TEST(attach_fork_then_parent_dies)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	struct iovm_ctx *own;
	uint64_t free0;
	pid_t p;

	g_name = share_name("a4fork-dies");
	own = a4_share(g_name, HEAP);
	free0 = share_info(own).heap_free;
	p = a4_fork();
	if (!p) {
		struct iovm_ctx *att = a4_attach(g_name);
		pid_t c;

		for (int i = 0; i < 10; i++)
			CHECK(iovm_dma_alloc(att, 1000 * (i + 1), 0, 0) != NULL);
		c = fork();
		if (!c) {
			struct iovm_ctx *mine;
			void *b;

			/* Outlives its parent (no PDEATHSIG): the test waits for it through ctl. */
			spin_until(&ctl->go, 1);
			mine = a4_attach(g_name);
			b = iovm_dma_alloc(mine, 12345, 0, 0);
			CHECK(b != NULL);
			CHECK_RET(iovm_dma_free(mine, b), 0);
			CHECK_OK(iovm_close(mine));
			atomic_store(&ctl->res, atomic_load(&attack_broken) ? 1 : 2);
			_exit(0);
		}
		ctl->child_pid = (uint64_t)c;
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	EXPECT_EQ(share_info(own).blocks, 10);
	a4_kill(p);
	/* Its blocks go, though its child still holds what fork gave it. */
	a4_settled(own, 1, 0, free0);
	atomic_store(&ctl->go, 1);
	for (int ms = 0; ms < 30000 && !atomic_load(&ctl->res); ms++)
		usleep(1000);
	EXPECT_MSG(ctl->res == 2, "the orphaned child's own attach: %lld", (long long)ctl->res);
	if (!ctl->res)
		kill((pid_t)ctl->child_pid, SIGKILL);
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));
	munmap(ctl, sizeof(*ctl));
}

/* Descriptors of this process that are not 0, 1, 2: listed into @buf ("3,5,9"). */
static int list_fds(char *buf, size_t len)
{
	int n = 0;

	buf[0] = 0;
	for (int fd = 3; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0) {
			size_t l = strlen(buf);

			snprintf(buf + l, len - l, "%s%d", l ? "," : "", fd);
			n++;
		}
	return n;
}

/* The exec'd side: argv = self --a4-exec NAME PA WRITEFD FDS-THE-PARENT-HAD-BEFORE "FDS-IT-HAS" */
static int exec_side(char **argv)
{
	const char *name = argv[2];
	uint64_t pa = strtoull(argv[3], NULL, 0);
	int wr = atoi(argv[4]);
	char *lib_fds = argv[5], *tok, *save = NULL;
	struct iovm_ctx *att;
	uint8_t *p, *k;
	struct iovm_share_info in;

	test_current = "exec_child (exec'd side)";
	/* What the parent's iovm had open must not survive exec (O_CLOEXEC). */
	for (tok = strtok_r(lib_fds, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int fd = atoi(tok);
		char path[64], link[256] = "";

		if (fd == wr || fcntl(fd, F_GETFD) < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (readlink(path, link, sizeof(link) - 1) < 0)
			link[0] = 0;
		EXPECT_MSG(0, "fd %d (%s) of the parent's iovm survived exec", fd, link);
	}
	att = a4_attach(name);
	in = share_info(att);
	p = a4_ptr(att, pa);
	EXPECT(p >= (uint8_t *)in.heap_va && p < (uint8_t *)in.heap_va + in.heap_size);
	EXPECT(all_bytes(p, 8192, 0x3e));
	memset(p, 0x4f, 8192);
	k = iovm_dma_alloc(att, 3000, 0, IOVM_DMA_KEEP);
	CHECK(k != NULL);
	memset(k, 0x61, 3000);
	put64(wr, a4_pa(att, k));
	put64(wr, (uint64_t)(uintptr_t)in.heap_va);
	CHECK_RET(iovm_share_check(att), 0);
	CHECK_OK(iovm_close(att));
	return attack_status();
}

TEST(exec_child)
{
	char fds_before[4096], fds_after[4096], lib_fds[4096], pa_s[32], wr_s[16];
	struct iovm_share_info in;
	struct iovm_ctx *own;
	uint8_t *p, *k;
	uint64_t free0, kpa, va;
	int pfd[2], st;
	pid_t pid;

	list_fds(fds_before, sizeof(fds_before));
	g_name = share_name("a4exec");
	own = a4_share(g_name, HEAP);
	in = share_info(own);
	free0 = in.heap_free;
	list_fds(fds_after, sizeof(fds_after));
	/* The descriptors iovm opened: those after sharing that were not there before. */
	lib_fds[0] = 0;
	{
		char copy[4096], *tok, *save = NULL;

		snprintf(copy, sizeof(copy), "%s", fds_after);
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char key[16];

			snprintf(key, sizeof(key), ",%s,", tok);
			char wrapped[4100];

			snprintf(wrapped, sizeof(wrapped), ",%s,", fds_before);
			if (!strstr(wrapped, key)) {
				size_t l = strlen(lib_fds);

				snprintf(lib_fds + l, sizeof(lib_fds) - l, "%s%s", l ? "," : "", tok);
			}
		}
	}
	printf("# iovm's descriptors after iovm_share(): %s\n", lib_fds[0] ? lib_fds : "(none)");
	p = iovm_dma_alloc(own, 8192, 0, 0);
	CHECK(p != NULL);
	memset(p, 0x3e, 8192);
	CHECK(pipe(pfd) == 0);
	snprintf(pa_s, sizeof(pa_s), "%#llx", (unsigned long long)a4_pa(own, p));
	snprintf(wr_s, sizeof(wr_s), "%d", pfd[1]);
	pid = a4_fork();
	if (!pid) {
		char *args[] = { "/proc/self/exe", "--a4-exec", (char *)g_name, pa_s, wr_s,
				 lib_fds[0] ? lib_fds : (char *)"-1", NULL };

		close(pfd[0]);
		execv("/proc/self/exe", args);
		_exit(98);
	}
	close(pfd[1]);
	kpa = get64(pfd[0]);
	va = get64(pfd[0]);
	st = a4_wait_deadline(pid, 60);
	close(pfd[0]);
	EXPECT_MSG(st == 0, "the exec'd child ended with %d", st);
	printf("# heap at %p here, %#llx in the exec'd child\n", in.heap_va, (unsigned long long)va);
	EXPECT(all_bytes(p, 8192, 0x4f));
	k = a4_ptr(own, kpa);
	EXPECT(all_bytes(k, 3000, 0x61));
	CHECK_RET(iovm_dma_free(own, k), 0);
	CHECK_RET(iovm_dma_free(own, p), 0);
	a4_settled(own, 1, 0, free0);
	CHECK_OK(iovm_close(own));
	/* And once closed, nothing of it is left open here either. */
	list_fds(fds_after, sizeof(fds_after));
	EXPECT_MSG(!strcmp(fds_before, fds_after), "descriptors before sharing: %s; after close: %s",
		   fds_before, fds_after);
}

int main(int argc, char **argv)
{
	a4_init();
	if (argc > 5 && !strcmp(argv[1], "--a4-exec"))
		return exec_side(argv);
	RUN(child_of_owner);
	RUN(child_of_attached);
	RUN(attach_fork_then_parent_dies);
	RUN(exec_child);
	return attack_status();
}
