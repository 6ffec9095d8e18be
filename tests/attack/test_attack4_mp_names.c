/* SPDX-License-Identifier: MIT */
/*
 * test_attack4_mp_names.c - attacks on the names of shares (iovm/mp.h):
 * every allowed character and length, reuse after the owner closed or
 * died, two owners racing for one name, a name whose owner's child still
 * holds what it inherited, attaching while the owner dies, and network
 * namespaces (as root).
 */
#include <sched.h>

#include "attack4_mp.h"

#define HEAP (UINT64_C(4) << 20)

struct ctl {
	_Atomic uint64_t go, ready, stop, done;
	_Atomic int64_t res[64];
	_Atomic uint64_t attached[64], refused[64], other[64], late[64];
};

static void spin_until(_Atomic uint64_t *v, uint64_t want)
{
	unsigned long n = 0;

	while (atomic_load(v) < want) {
		usleep(50);
		CHECK_MSG(++n < 600000ul, "waited half a minute for another process");
	}
}

static int try_share(const char *name, struct iovm_ctx **out)
{
	struct iovm_share_params p = { .heap_size = HEAP, .page_size = 4096, .group = -1 };
	struct iovm_ctx *ctx;
	int r;

	CHECK_OK(iovm_open("log_level=error", &ctx));
	r = iovm_share(ctx, name, &p);
	if (r) {
		CHECK_OK(iovm_close(ctx));
		ctx = NULL;
	}
	*out = ctx;
	return r;
}

TEST(every_allowed_name)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
	static const char *const refused[] = {
		"a/b", "a b", "a\nb", "a:b", "a@b", "\xc3\xa9t\xc3\xa9", "a\tb", "a*", "a\\b", "~",
	};
	char n63[64], n64[65], one[2] = { 0 };
	struct iovm_ctx *ctx, *att;
	pid_t pid;

	/* 63 characters drawn from every allowed one, made unique by the pid. */
	snprintf(n63, sizeof(n63), "%d-", (int)getpid());
	for (size_t i = strlen(n63); i < 63; i++)
		n63[i] = allowed[i % (sizeof(allowed) - 1)];
	n63[63] = 0;
	memcpy(n64, n63, 63);
	n64[63] = 'x';
	n64[64] = 0;
	CHECK_RET(try_share(n64, &ctx), -EINVAL);
	CHECK_RET(iovm_attach(n64, "", &att), -EINVAL);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		CHECK_RET(try_share(refused[i], &ctx), -EINVAL);
		CHECK_RET(iovm_attach(refused[i], "", &att), -EINVAL);
	}
	CHECK_RET(try_share(n63, &ctx), 0);
	CHECK(ctx != NULL);
	pid = a4_fork();
	if (!pid) {
		struct iovm_share_info in;

		att = a4_attach(n63);
		in = share_info(att);
		EXPECT_MSG(!strcmp(in.name, n63), "info.name \"%s\"", in.name);
		EXPECT_EQ(in.owner, false);
		EXPECT_EQ(in.owner_pid, getppid());
		/* A prefix, or the name with one more character, is another name. */
		n63[62] = 0;
		CHECK_RET(iovm_attach(n63, "", &att), -ENOENT);
		CHECK_OK(iovm_close(att));
		a4_child_exit();
	}
	EXPECT_EQ(a4_wait(pid), 0);
	EXPECT_MSG(!strcmp(share_info(ctx).name, n63), "owner's info.name");
	CHECK_OK(iovm_close(ctx));
	CHECK_RET(iovm_attach(n63, "", &att), -ENOENT);
	/* Names of one character, "." and ".." included: names, not paths. */
	for (const char *c = "._-Z9"; *c; c++) {
		one[0] = *c;
		if (try_share(one, &ctx) == -EEXIST)
			continue; /* someone else's on this machine */
		CHECK(ctx != NULL);
		att = a4_attach(one);
		CHECK_OK(iovm_close(att));
		CHECK_OK(iovm_close(ctx));
	}
	CHECK_RET(try_share("..", &ctx), 0);
	if (ctx)
		CHECK_OK(iovm_close(ctx));
}

/* Share, close, share again at once, from this process and another: 20 times. */
TEST(reuse_after_close)
{
	const char *name = share_name("a4reuse");
	struct iovm_ctx *ctx, *att;

	for (int i = 0; i < 20; i++) {
		CHECK_RET(try_share(name, &ctx), 0);
		CHECK(ctx != NULL);
		if (i % 2) {
			att = a4_attach(name);
			CHECK_OK(iovm_close(att));
		}
		CHECK_OK(iovm_close(ctx));
		CHECK_RET(iovm_attach(name, "", &att), -ENOENT);
	}
	for (int i = 0; i < 5; i++) {
		pid_t pid = a4_fork();

		if (!pid) {
			CHECK_RET(try_share(name, &ctx), 0);
			if (ctx)
				CHECK_OK(iovm_close(ctx));
			a4_child_exit();
		}
		EXPECT_EQ(a4_wait(pid), 0);
	}
}

/* The owner is killed: its name is free for a new owner at once, and attaching to the dead one fails. */
TEST(reuse_after_owner_death)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	const char *name = share_name("a4death");
	struct iovm_ctx *ctx, *att;

	for (int round = 0; round < 10; round++) {
		pid_t owner;

		atomic_store(&ctl->ready, 0);
		owner = a4_fork();
		if (!owner) {
			struct iovm_ctx *o;

			CHECK_RET(try_share(name, &o), 0);
			atomic_store(&ctl->ready, 1);
			for (;;)
				pause();
		}
		spin_until(&ctl->ready, 1);
		a4_kill(owner);
		CHECK_RET(iovm_attach(name, "", &att), -ENOENT);
		CHECK_RET(try_share(name, &ctx), 0);
		if (ctx)
			CHECK_OK(iovm_close(ctx));
	}
	munmap(ctl, sizeof(*ctl));
}

/*
 * The owner dies while others stay attached. A new owner of the name gets
 * a new share: whoever attaches then finds nothing of the old one.
 */
TEST(new_owner_while_old_share_lives)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	const char *name = share_name("a4new");
	const struct iovm_zone *z;
	struct iovm_ctx *survivor, *ctx = NULL, *late;
	pid_t owner;
	int r;

	owner = a4_fork();
	if (!owner) {
		struct iovm_ctx *o;

		CHECK_RET(try_share(name, &o), 0);
		atomic_store(&ctl->ready, 1);
		for (;;)
			pause();
	}
	spin_until(&ctl->ready, 1);
	survivor = a4_attach(name);
	CHECK_RET(iovm_zone_reserve(survivor, "a4-old", 4096, 0, 0, &z), 0);
	memset(z->va, 0x77, 4096);
	a4_kill(owner);
	r = try_share(name, &ctx);
	if (r == -EEXIST) {
		printf("# note: the name of a share whose owner died stays taken (-EEXIST) while "
		       "others are attached\n");
		EXPECT(ctx == NULL);
		CHECK_RET(iovm_attach(name, "", &late), -ENOENT);
	} else {
		CHECK_RET(r, 0);
		CHECK(ctx != NULL);
		late = a4_attach(name);
		CHECK_RET(iovm_zone_lookup(late, "a4-old", &z), -ENOENT);
		EXPECT_EQ(share_info(late).owner_pid, getpid());
		EXPECT_EQ(share_info(late).processes, 2);
		CHECK_OK(iovm_close(late));
		CHECK_OK(iovm_close(ctx));
	}
	/* The old share is still whole for its survivor. */
	CHECK_RET(iovm_zone_lookup(survivor, "a4-old", &z), 0);
	EXPECT(all_bytes(z->va, 4096, 0x77));
	EXPECT_EQ(share_info(survivor).owner_pid, owner);
	CHECK_RET(iovm_zone_free(survivor, z), 0);
	a4_settled(survivor, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(survivor));
	munmap(ctl, sizeof(*ctl));
}

/* 16 processes share one name at once: exactly one owns it, all the others can attach to it. */
TEST(owners_race_for_a_name)
{
	enum { N = 16 };
	struct ctl *ctl = a4_shared(sizeof(*ctl));

	for (int round = 0; round < 5; round++) {
		const char *name = share_name("a4race");
		pid_t kid[N];
		int winners = 0;

		memset(ctl, 0, sizeof(*ctl));
		for (int i = 0; i < N; i++) {
			kid[i] = a4_fork();
			if (!kid[i]) {
				struct iovm_ctx *ctx = NULL;
				struct iovm_share_params p = { .heap_size = HEAP, .page_size = 4096, .group = -1 };
				int r;

				CHECK_OK(iovm_open("log_level=error", &ctx));
				atomic_fetch_add(&ctl->ready, 1);
				spin_until(&ctl->go, 1);
				r = iovm_share(ctx, name, &p);
				ctl->res[i] = r;
				if (r) {
					CHECK_RET(r, -EEXIST);
					CHECK_OK(iovm_close(ctx));
					atomic_fetch_add(&ctl->done, 1);
					/* The loser attaches to the winner. */
					spin_until(&ctl->stop, 1);
					ctx = a4_attach(name);
					ctl->other[i] = (uint64_t)share_info(ctx).owner_pid;
					atomic_fetch_add(&ctl->done, 1);
					spin_until(&ctl->stop, 2);
					CHECK_OK(iovm_close(ctx));
				} else {
					atomic_fetch_add(&ctl->done, 1);
					spin_until(&ctl->stop, 2);
					a4_settled(ctx, 1, 0, UINT64_MAX);
					CHECK_OK(iovm_close(ctx));
				}
				a4_child_exit();
			}
		}
		spin_until(&ctl->ready, N);
		atomic_store(&ctl->go, 1);
		spin_until(&ctl->done, N);
		for (int i = 0; i < N; i++)
			winners += ctl->res[i] == 0;
		EXPECT_MSG(winners == 1, "round %d: %d processes own the name", round, winners);
		atomic_store(&ctl->stop, 1);
		spin_until(&ctl->done, 2 * N - (uint64_t)winners);
		for (int i = 0; i < N; i++)
			if (ctl->res[i])
				for (int j = 0; j < N; j++)
					if (!ctl->res[j])
						EXPECT_EQ(ctl->other[i], kid[j]);
		atomic_store(&ctl->stop, 2);
		for (int i = 0; i < N; i++)
			EXPECT_EQ(a4_wait_deadline(kid[i], 60), 0);
	}
	munmap(ctl, sizeof(*ctl));
}

/*
 * The owner forked a child that lives on (a worker that never touches
 * iovm). When the owner closes or dies, the name must be free and an
 * attach must fail at once, not hang on what the child inherited.
 */
TEST(owner_child_outlives_owner)
{
	struct ctl *ctl = a4_shared(sizeof(*ctl));

	for (int how = 0; how < 2; how++) {
		const char *name = share_name("a4inherit");
		struct iovm_ctx *ctx;
		pid_t owner, prober;
		int st;

		memset(ctl, 0, sizeof(*ctl));
		owner = a4_fork();
		if (!owner) {
			struct iovm_ctx *o;
			pid_t worker;

			CHECK_RET(try_share(name, &o), 0);
			worker = fork();
			if (!worker) {
				/* Lives until the test says: not a child of the test's, so it says when. */
				spin_until(&ctl->stop, 1);
				_exit(0);
			}
			ctl->other[0] = (uint64_t)worker;
			atomic_store(&ctl->ready, 1);
			spin_until(&ctl->go, 1);
			if (how == 0)
				CHECK_OK(iovm_close(o));
			atomic_store(&ctl->ready, 2);
			for (;;)
				pause();
		}
		spin_until(&ctl->ready, 1);
		if (how == 0) {
			atomic_store(&ctl->go, 1);
			spin_until(&ctl->ready, 2);
		} else {
			a4_kill(owner);
		}
		/* An attach in a child, with a deadline: a hang is a failure, not a stuck test. */
		prober = a4_fork();
		if (!prober) {
			struct iovm_ctx *att;

			alarm(20);
			CHECK_RET(iovm_attach(name, "", &att), -ENOENT);
			a4_child_exit();
		}
		st = a4_wait_deadline(prober, 30);
		EXPECT_MSG(st == 0, "%s owner, its forked child alive: attach ended with %d%s",
			   how ? "a killed" : "a closed", st, st == -SIGALRM ? " (hung)" : "");
		st = try_share(name, &ctx);
		EXPECT_MSG(st == 0, "%s owner, its forked child alive: iovm_share() of the name: %d",
			   how ? "a killed" : "a closed", st);
		if (ctx)
			CHECK_OK(iovm_close(ctx));
		atomic_store(&ctl->stop, 1);
		if (how == 0)
			a4_kill(owner);
		/* The worker was reparented; it ends on ctl->stop. */
		for (int ms = 0; ms < 10000 && kill((pid_t)ctl->other[0], 0) == 0; ms++)
			usleep(1000);
	}
	munmap(ctl, sizeof(*ctl));
}

/* Processes attach again and again while the owner is killed: each attach succeeds or says ENOENT. */
TEST(attach_while_owner_dies)
{
	enum { N = 6 };
	struct ctl *ctl = a4_shared(sizeof(*ctl));
	uint64_t seed = a4_seed();

	for (int round = 0; round < 8; round++) {
		const char *name = share_name("a4dying");
		pid_t owner, kid[N];

		memset(ctl, 0, sizeof(*ctl));
		owner = a4_fork();
		if (!owner) {
			struct iovm_ctx *o;

			CHECK_RET(try_share(name, &o), 0);
			atomic_store(&ctl->ready, 1);
			for (;;)
				pause();
		}
		spin_until(&ctl->ready, 1);
		for (int i = 0; i < N; i++) {
			kid[i] = a4_fork();
			if (!kid[i]) {
				alarm(60);
				/*
				 * Until this process has been refused once after the owner's
				 * death (ctl->done says when it died): no deadline, so that a
				 * loaded machine cannot make the promise look broken.
				 */
				for (;;) {
					struct iovm_ctx *att = NULL;
					bool dead = atomic_load(&ctl->done) != 0;
					int r = iovm_attach(name, "log_level=error", &att);

					if (r == 0) {
						void *p;

						/* Begun after the owner was reaped: there was nobody to answer. */
						if (dead)
							ctl->late[i]++;
						p = iovm_dma_alloc(att, 64 << (i % 6), 0, 0);
						CHECK(p != NULL);
						CHECK_RET(iovm_dma_free(att, p), 0);
						CHECK_RET(iovm_share_check(att), 0);
						CHECK_OK(iovm_close(att));
						ctl->attached[i]++;
					} else if (r == -ENOENT) {
						ctl->refused[i]++;
						if (dead)
							break;
					} else {
						ctl->other[i]++;
						ctl->res[i] = r;
						if (dead)
							break;
					}
				}
				a4_child_exit();
			}
		}
		usleep(2000 + test_rand(&seed) % 20000);
		a4_kill(owner);
		/* Reaped: from now on nobody may attach, and each attacher goes on until told so. */
		atomic_store(&ctl->done, 1);
		for (int i = 0; i < N; i++) {
			int st = a4_wait_deadline(kid[i], 60);

			EXPECT_MSG(st == 0, "round %d: attacher %d ended with %d%s", round, i, st,
				   st == -SIGALRM ? " (an attach hung)" : "");
			EXPECT_MSG(ctl->other[i] == 0, "round %d: attacher %d: %llu attaches failed with %lld (%s)",
				   round, i, (unsigned long long)ctl->other[i], (long long)ctl->res[i],
				   strerror((int)-ctl->res[i]));
			EXPECT_MSG(ctl->late[i] == 0, "round %d: attacher %d attached %llu times after the owner was reaped",
				   round, i, (unsigned long long)ctl->late[i]);
		}
		{
			uint64_t a = 0, r = 0;

			for (int i = 0; i < N; i++) {
				a += ctl->attached[i];
				r += ctl->refused[i];
			}
			if (round == 0)
				printf("# round 0: %llu attaches, %llu refused\n", (unsigned long long)a,
				       (unsigned long long)r);
			EXPECT_MSG(r > 0, "round %d: no attach was refused after the owner's death", round);
		}
	}
	munmap(ctl, sizeof(*ctl));
}

/* A name is per network namespace (as root: unshare it in a child). */
TEST(network_namespaces)
{
	const char *name = share_name("a4netns");
	struct iovm_ctx *ctx;
	uint64_t attaches;
	pid_t pid;

	if (geteuid() != 0)
		SKIP_CASE("needs root to unshare the network namespace");
	CHECK_RET(try_share(name, &ctx), 0);
	attaches = share_info(ctx).attaches; /* the owner counts itself */
	pid = a4_fork();
	if (!pid) {
		struct iovm_ctx *other, *att;

		if (unshare(CLONE_NEWNET)) {
			printf("# skip part: unshare(CLONE_NEWNET): %s\n", strerror(errno));
			_exit(77);
		}
		CHECK_RET(iovm_attach(name, "", &att), -ENOENT);
		CHECK_RET(try_share(name, &other), 0);
		att = a4_attach(name);
		EXPECT_EQ(share_info(att).owner_pid, getpid());
		CHECK_OK(iovm_close(att));
		CHECK_OK(iovm_close(other));
		a4_child_exit();
	}
	{
		int st = a4_wait(pid);

		EXPECT(st == 0 || st == 77);
	}
	EXPECT_EQ(share_info(ctx).attaches, attaches);
	EXPECT_EQ(share_info(ctx).processes, 1);
	CHECK_OK(iovm_close(ctx));
}

int main(void)
{
	a4_init();
	RUN(every_allowed_name);
	RUN(reuse_after_close);
	RUN(reuse_after_owner_death);
	RUN(new_owner_while_old_share_lives);
	RUN(owners_race_for_a_name);
	RUN(owner_child_outlives_owner);
	RUN(attach_while_owner_dies);
	RUN(network_namespaces);
	return attack_status();
}
