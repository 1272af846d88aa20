/*
 * protreplay capture workload.
 *
 * Exercises, phase by phase, the kernel paths the protection models replay:
 * page faults, protection keys, O_DIRECT (gup fast), shared-mapping writeback,
 * sendfile, vmsplice, process_vm_readv, /proc/self/mem (remote gup),
 * io_uring registered buffers (long-term pins), memfd_secret (direct-map
 * removal) and buffered file I/O through kmap_local (highmem on i386); then
 * more distinct highmem pages through kmap() than there are pkmap slots (the
 * slot search wraps and flush_all_zero_pkmaps() runs), kmap_local copies on a
 * CPU shared with a CPU-bound competitor (preemption inside kmap_local
 * sections on PREEMPT_RT), and gup on a VM_PFNMAP/VM_IO mapping (refused).
 *
 * Every phase runs in its own child process whose name is set with
 * prctl(PR_SET_NAME, "wl-<phase>") (ftrace text shows a pid's last comm, so a
 * process per phase keeps the names apart), and is bracketed by trace_marker
 * lines "wl phase <phase>" and "wl phase <phase> done".
 *
 * Usage: wl [-d SCRATCH_DIR] [phase ...]      (default: every phase but dmstray, dir ".")
 * Build: cc -O1 -static -o wl wl.c            (no library besides libc)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif
#if !defined(__NR_pkey_alloc) && defined(__x86_64__)
#define __NR_pkey_mprotect 329
#define __NR_pkey_alloc 330
#define __NR_pkey_free 331
#endif
#ifndef __NR_move_pages
#define __NR_move_pages -1
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

#define PG 4096
static const char *dir = ".";
static int marker_fd = -1;
static sigjmp_buf jb;
static volatile sig_atomic_t got_sig;

static void marker(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (marker_fd >= 0 && n > 0)
		(void)!write(marker_fd, buf, (size_t)n);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "wl[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	got_sig = si->si_code;
	siglongjmp(jb, 1);
}

static void *amap(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) { say("mmap: %s", strerror(errno)); exit(1); }
	return p;
}

static char *path(const char *name)
{
	static char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return p;
}

static void fill(char *p, size_t len, int seed)
{
	for (size_t i = 0; i < len; i++) p[i] = (char)(seed + i * 7);
}

/* ---- phases ---------------------------------------------------------- */

static void ph_fault(void)
{
	size_t len = 16 * PG;
	volatile char *p = amap(len);
	for (size_t i = 0; i < len; i += PG) p[i] = 1;          /* not-present write faults */
	if (mprotect((void *)p, PG, PROT_READ)) say("mprotect: %s", strerror(errno));
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
	sigaction(SIGSEGV, &sa, NULL);
	if (!sigsetjmp(jb, 1)) { p[0] = 2; say("mprotect write did not fault"); }
	else say("mprotect violation caught, si_code=%d", (int)got_sig);
	munmap((void *)p, len);
}

static void ph_pkey(void)
{
	size_t len = 4 * PG;
	volatile char *p = amap(len);
	for (size_t i = 0; i < len; i += PG) p[i] = 1;
#ifndef __NR_pkey_alloc
	say("no pkey syscalls on this architecture");
	munmap((void *)p, len);
	return;
#else
	long k = syscall(__NR_pkey_alloc, 0, 0);
	if (k < 0) { say("pkey_alloc: %s (no PKU?)", strerror(errno)); return; }
	if (syscall(__NR_pkey_mprotect, (void *)p, len, PROT_READ | PROT_WRITE, (int)k))
		{ say("pkey_mprotect: %s", strerror(errno)); return; }
#if defined(__x86_64__) || defined(__i386__)
	/* PKRU: two bits per key, AD = bit 2k, WD = bit 2k+1; deny access to key k. */
	unsigned int eax = 0, ecx = 0, edx = 0;
	__asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(ecx)); /* rdpkru */
	eax |= 1u << (2 * k);
	__asm__ volatile(".byte 0x0f,0x01,0xef" : : "a"(eax), "c"(0), "d"(0));     /* wrpkru */
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
	sigaction(SIGSEGV, &sa, NULL);
	if (!sigsetjmp(jb, 1)) { p[0] = 3; say("pkey write did not fault"); }
	else say("protection-key fault caught, si_code=%d (SEGV_PKUERR=4)", (int)got_sig);
	eax &= ~(3u << (2 * k));
	__asm__ volatile(".byte 0x0f,0x01,0xef" : : "a"(eax), "c"(0), "d"(0));
#endif
	syscall(__NR_pkey_free, (int)k);
	munmap((void *)p, len);
#endif
}

static void ph_odirect(void)
{
	size_t len = 64 * PG;
	char *buf = amap(len);
	fill(buf, len, 1);
	int fd = open(path("odirect.dat"), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0) { say("open O_DIRECT: %s", strerror(errno)); return; }
	ssize_t w = pwrite(fd, buf, len, 0);
	memset(buf, 0, len);
	ssize_t r = pread(fd, buf, len, 0);
	say("O_DIRECT pwrite=%zd pread=%zd", w, r);
	close(fd);
	munmap(buf, len);
}

static void ph_writeback(void)
{
	size_t len = 16 * PG;
	int fd = open(path("shared.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)len)) { say("shared file: %s", strerror(errno)); return; }
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) { say("mmap shared: %s", strerror(errno)); return; }
	fill(p, len, 2);
	int rc = msync(p, len, MS_SYNC);
	say("msync=%d", rc);
	p[0] = 9;                                                 /* write fault after clean */
	rc = msync(p, len, MS_SYNC);
	munmap(p, len);
	close(fd);
}

static void write_file(const char *name, size_t len, int seed)
{
	char *buf = amap(len);
	fill(buf, len, seed);
	int fd = open(path(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { say("open %s: %s", name, strerror(errno)); exit(1); }
	if (write(fd, buf, len) != (ssize_t)len) say("short write %s", name);
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);             /* next read goes to the disk */
	close(fd);
	munmap(buf, len);
}

static void ph_sendfile(void)
{
	size_t len = 16 * PG;
	write_file("sendfile-src.dat", len, 3);
	int in = open(path("sendfile-src.dat"), O_RDONLY);
	int out = open(path("sendfile-dst.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	off_t off = 0;
	ssize_t n1 = sendfile(out, in, &off, len);                /* page cache -> file */
	fsync(out);
	close(out);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { say("socketpair: %s", strerror(errno)); return; }
	off = 0;
	ssize_t n2 = sendfile(sv[0], in, &off, len);              /* page cache -> socket */
	char *buf = amap(len);
	ssize_t got = 0, r;
	while (got < n2 && (r = read(sv[1], buf + got, len - got)) > 0) got += r;
	say("sendfile file=%zd socket=%zd read=%zd", n1, n2, got);
	close(sv[0]); close(sv[1]); close(in);
	munmap(buf, len);
}

static void ph_vmsplice(void)
{
	size_t len = 8 * PG;
	char *buf = amap(len);
	fill(buf, len, 4);
	int pfd[2];
	if (pipe(pfd)) return;
	struct iovec iov = { buf, len };
	ssize_t n = vmsplice(pfd[1], &iov, 1, 0);
	char *dst = amap(len);
	ssize_t got = 0, r;
	while (n > 0 && got < n && (r = read(pfd[0], dst + got, len - got)) > 0) got += r;
	say("vmsplice=%zd read=%zd", n, got);
	close(pfd[0]); close(pfd[1]);
	munmap(buf, len); munmap(dst, len);
}

static void ph_pvread(void)
{
	size_t len = 8 * PG;
	char *src = amap(len), *dst = amap(len);
	fill(src, len, 5);
	pid_t child = fork();
	if (child == 0) { prctl(PR_SET_NAME, "wl-pvread-peer"); pause(); _exit(0); }
	usleep(1000);
	struct iovec l = { dst, len }, rm = { src, len };
	ssize_t n = process_vm_readv(child, &l, 1, &rm, 1, 0);     /* remote pin of the child */
	ssize_t m = process_vm_writev(child, &l, 1, &rm, 1, 0);
	say("process_vm_readv=%zd writev=%zd", n, m);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	munmap(src, len); munmap(dst, len);
}

static void ph_procmem(void)
{
	size_t len = 8 * PG;
	char *src = amap(len), *dst = amap(len);
	fill(src, len, 6);
	int fd = open("/proc/self/mem", O_RDWR);
	if (fd < 0) { say("/proc/self/mem: %s", strerror(errno)); return; }
	ssize_t r = pread(fd, dst, len, (off_t)(uintptr_t)src);    /* get_user_pages_remote + kmap */
	ssize_t w = pwrite(fd, dst, len, (off_t)(uintptr_t)src);
	say("/proc/self/mem read=%zd write=%zd", r, w);
	close(fd);
	munmap(src, len); munmap(dst, len);
}

static void ph_iouring(void)
{
	struct io_uring_params pr;
	memset(&pr, 0, sizeof pr);
	int rfd = (int)syscall(__NR_io_uring_setup, 4, &pr);
	if (rfd < 0) { say("io_uring_setup: %s", strerror(errno)); return; }
	size_t sqsz = pr.sq_off.array + pr.sq_entries * sizeof(unsigned);
	size_t cqsz = pr.cq_off.cqes + pr.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQ_RING);
	char *cq = mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, pr.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) { say("io_uring mmap failed"); return; }
	size_t len = 16 * PG;
	char *buf = amap(len);
	fill(buf, len, 7);
	struct iovec iov = { buf, len };
	int rc = (int)syscall(__NR_io_uring_register, rfd, IORING_REGISTER_BUFFERS, &iov, 1); /* long-term pin */
	if (rc) { say("IORING_REGISTER_BUFFERS: %s", strerror(errno)); return; }
	int fd = open(path("iouring.dat"), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0) fd = open(path("iouring.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (int op = 0; op < 2; op++) {
		unsigned *tail = (unsigned *)(sq + pr.sq_off.tail), mask = *(unsigned *)(sq + pr.sq_off.ring_mask);
		unsigned t = *tail, idx = t & mask;
		struct io_uring_sqe *e = &sqes[idx];
		memset(e, 0, sizeof *e);
		e->opcode = op == 0 ? IORING_OP_WRITE_FIXED : IORING_OP_READ_FIXED;
		e->fd = fd; e->addr = (uintptr_t)buf; e->len = (unsigned)len; e->off = 0; e->buf_index = 0;
		((unsigned *)(sq + pr.sq_off.array))[idx] = idx;
		__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
		int n = (int)syscall(__NR_io_uring_enter, rfd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		unsigned *chead = (unsigned *)(cq + pr.cq_off.head), cmask = *(unsigned *)(cq + pr.cq_off.ring_mask);
		struct io_uring_cqe *c = (struct io_uring_cqe *)(cq + pr.cq_off.cqes) + (*chead & cmask);
		say("io_uring %s enter=%d res=%d", op == 0 ? "WRITE_FIXED" : "READ_FIXED", n, c->res);
		__atomic_store_n(chead, *chead + 1, __ATOMIC_RELEASE);
	}
	syscall(__NR_io_uring_register, rfd, IORING_UNREGISTER_BUFFERS, NULL, 0);   /* unpin */
	close(fd);
	close(rfd);
	munmap(buf, len);
}

static void ph_secret(void)
{
	int fd = (int)syscall(__NR_memfd_secret, 0);
	if (fd < 0) { say("memfd_secret: %s", strerror(errno)); return; }
	size_t len = 4 * PG;
	if (ftruncate(fd, (off_t)len)) { say("ftruncate secret: %s", strerror(errno)); return; }
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) { say("mmap secret: %s", strerror(errno)); return; }
	for (size_t i = 0; i < len; i += PG) p[i] = 0x5a;          /* secretmem_fault -> direct map invalid */
	/* gup on a secretmem mapping must fail: try O_DIRECT from it and /proc/self/mem */
	int mfd = open("/proc/self/mem", O_RDONLY);
	char tmp[64];
	ssize_t r = mfd >= 0 ? pread(mfd, tmp, sizeof tmp, (off_t)(uintptr_t)p) : -1;
	say("memfd_secret mapped %zu bytes; /proc/self/mem read of it=%zd (%s)", len, r, r < 0 ? strerror(errno) : "ok");
	if (mfd >= 0) close(mfd);
	munmap(p, len);
	close(fd);                                                 /* free -> direct map default */
}

static void ph_kmapfile(void)
{
	size_t len = 64 * PG;
	char *buf = amap(len);
	fill(buf, len, 8);
	int fd = open(path("kmap.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { say("open kmap.dat: %s", strerror(errno)); return; }
	ssize_t w = write(fd, buf, len);                          /* copy_page_from_iter_atomic: kmap_local */
	memset(buf, 0, len);
	ssize_t r = pread(fd, buf, len, 0);                       /* copy_page_to_iter: kmap_local */
	fsync(fd);                                                /* writeback of the highmem pages */
	say("kmapfile write=%zd read=%zd", w, r);
	close(fd);
	munmap(buf, len);
}

/* kmap() of more distinct highmem pages than the pkmap has slots (LAST_PKMAP: 512 with PAE, 1024
 * without): /proc/self/mem reads one page at a time through access_remote_vm(), which kmap()s it
 * (kmap_high on a highmem page). Each kunmap() leaves the slot stale (count 1); when the linear slot
 * search wraps, map_new_virtual() calls flush_all_zero_pkmaps(), which clears them all. */
#define PKMAP_PAGES 1100
static void ph_pkmap(void)
{
	size_t len = (size_t)PKMAP_PAGES * PG;
	char *src = amap(len), dst[64];
	for (size_t i = 0; i < len; i += PG) src[i] = (char)(i / PG);   /* one anonymous page each */
	int fd = open("/proc/self/mem", O_RDONLY);
	if (fd < 0) { say("/proc/self/mem: %s", strerror(errno)); return; }
	size_t ok = 0;
	for (size_t i = 0; i < len; i += PG)
		if (pread(fd, dst, sizeof dst, (off_t)(uintptr_t)(src + i)) == (ssize_t)sizeof dst) ok++;
	say("pkmap: %zu of %d pages read through /proc/self/mem", ok, PKMAP_PAGES);
	close(fd);
	munmap(src, len);
}

static void pin_cpu0(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof set, &set)) say("sched_setaffinity: %s", strerror(errno));
}

/* kmap_local sections on a CPU shared with two competitors, all pinned to CPU 0, while this task
 * pread()s a page-cache file (copy_page_to_iter -> kmap_local_page per page):
 *  - "wl-spin", a CPU-bound SCHED_OTHER task: the tick preempts the reader for it;
 *  - "wl-tick", a SCHED_FIFO task that wakes every millisecond and spins for 100 us: its wakeup
 *    preempts the reader at once where the kernel allows it.
 * On PREEMPT_RT a kmap_local section is preemptible (migrate_disable() only), so wl-tick's wakeups
 * land inside it (__kmap_local_sched_out runs); a SCHED_OTHER competitor only sets a lazy resched there
 * (6.1-rt: migrate_disable() also holds off lazy preemption). With voluntary preemption (the non-RT
 * Debian kernels) neither preempts inside the section. */
#define PREEMPT_FILE_PAGES 64
#define PREEMPT_ROUNDS 48
static void ph_preempt(void)
{
	/* the spinner first: forked later it would share the buffer copy-on-write, and the copy's write
	 * fault inside the kmap_local section would be a preemption point of its own */
	pin_cpu0();
	pid_t spin = fork();
	if (spin == 0) {
		prctl(PR_SET_NAME, "wl-spin");
		for (volatile unsigned long n = 0;; n++) ;
	}
	pid_t tick = fork();
	if (tick == 0) {
		prctl(PR_SET_NAME, "wl-tick");
		struct sched_param sp = { .sched_priority = 10 };
		if (sched_setscheduler(0, SCHED_FIFO, &sp)) say("SCHED_FIFO: %s", strerror(errno));
		struct timespec ms = { 0, 1000000 }, a, b;
		for (;;) {
			nanosleep(&ms, NULL);
			clock_gettime(CLOCK_MONOTONIC, &a);
			do clock_gettime(CLOCK_MONOTONIC, &b);
			while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 100000);
		}
	}
	usleep(2000);                                            /* let wl-tick become SCHED_FIFO */
	size_t len = PREEMPT_FILE_PAGES * PG;
	char *buf = amap(len);
	fill(buf, len, 9);
	int fd = open(path("preempt.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { say("open preempt.dat: %s", strerror(errno)); kill(spin, SIGKILL); kill(tick, SIGKILL); return; }
	if (write(fd, buf, len) != (ssize_t)len) say("short write preempt.dat");
	fsync(fd);                                               /* stays in the page cache */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ssize_t total = 0;
	for (int r = 0; r < PREEMPT_ROUNDS; r++) total += pread(fd, buf, len, 0);   /* kmap_local per page */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	kill(spin, SIGKILL);
	kill(tick, SIGKILL);
	waitpid(spin, NULL, 0);
	waitpid(tick, NULL, 0);
	say("preempt: %zd bytes in %d reads beside wl-spin and wl-tick on cpu 0, %ld ms", total, PREEMPT_ROUNDS,
	    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	close(fd);
	munmap(buf, len);
}

/* A VM_IO|VM_PFNMAP mapping (remap_pfn_range): /dev/mem's legacy VGA window at 0xa0000 (below 1 MB and
 * not RAM, so STRICT_DEVMEM allows it), else the first PCI memory BAR through sysfs. gup must refuse it:
 * process_vm_readv (pin_user_pages_remote), O_DIRECT pwrite from it (gup fast, then the slow path),
 * vmsplice, /proc/self/mem (gup refuses; the vma's ->access, generic_access_phys, reads it instead) and
 * move_pages(2) status queries (follow_page -> follow_page_pte -> vm_normal_page: a special pte). */
#define PFNMAP_PAGES 4
static void *map_pfnmap(const char **what)
{
	size_t len = PFNMAP_PAGES * PG;
	int fd = open("/dev/mem", O_RDWR | O_SYNC);
	if (fd >= 0) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0xa0000);
		close(fd);
		if (p != MAP_FAILED) { *what = "/dev/mem at 0xa0000"; return p; }
		say("mmap /dev/mem 0xa0000: %s", strerror(errno));
	} else say("/dev/mem: %s", strerror(errno));
	static char res[300];
	FILE *ls = popen("ls /sys/bus/pci/devices/*/resource0 2>/dev/null", "r");
	while (ls && fgets(res, sizeof res, ls)) {
		res[strcspn(res, "\n")] = 0;
		fd = open(res, O_RDWR | O_SYNC);
		if (fd < 0) continue;
		struct stat st;
		void *p = fstat(fd, &st) || st.st_size < (off_t)len ? MAP_FAILED
			: mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p != MAP_FAILED) { pclose(ls); *what = res; return p; }
	}
	if (ls) pclose(ls);
	return NULL;
}

static void ph_pfnmap(void)
{
	size_t len = PFNMAP_PAGES * PG;
	const char *what = "";
	char *p = map_pfnmap(&what);
	if (!p) { say("pfnmap: no VM_PFNMAP mapping could be made"); return; }
	char *dst = amap(len);
	struct iovec l = { dst, PG }, rm = { p, PG };
	errno = 0;
	ssize_t n = process_vm_readv(getpid(), &l, 1, &rm, 1, 0);
	int e1 = errno;
	int fd = open(path("pfnmap.dat"), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	errno = 0;
	ssize_t w = fd >= 0 ? pwrite(fd, p, PG, 0) : -1;
	int e2 = errno;
	if (fd >= 0) close(fd);
	int pfd[2];
	ssize_t v = -1;
	int e3 = 0;
	if (!pipe(pfd)) {
		struct iovec iov = { p, PG };
		errno = 0;
		v = vmsplice(pfd[1], &iov, 1, 0);
		e3 = errno;
		close(pfd[0]); close(pfd[1]);
	}
	int mfd = open("/proc/self/mem", O_RDONLY);
	errno = 0;
	ssize_t r = mfd >= 0 ? pread(mfd, dst, 64, (off_t)(uintptr_t)p) : -1;
	int e4 = errno;
	if (mfd >= 0) close(mfd);
	long mp = -1;
	int st[PFNMAP_PAGES] = { 0 }, e5 = ENOSYS;
	if (__NR_move_pages >= 0) {
		void *pages[PFNMAP_PAGES];
		for (int i = 0; i < PFNMAP_PAGES; i++) pages[i] = p + (size_t)i * PG;
		errno = 0;
		mp = syscall(__NR_move_pages, 0, PFNMAP_PAGES, pages, NULL, st, 0);
		e5 = errno;
	}
	say("pfnmap %s: process_vm_readv=%zd (%s) O_DIRECT pwrite=%zd (%s) vmsplice=%zd (%s) /proc/self/mem=%zd (%s) "
	    "move_pages=%ld (%s) status[0]=%d", what, n, strerror(e1), w, strerror(e2), v, strerror(e3),
	    r, strerror(e4), mp, strerror(e5), st[0]);
	munmap(p, len);
	munmap(dst, len);
}

/* A stray kernel read of a removed secretmem frame through its direct-map alias (seed 004): the frame's pfn
 * comes from /proc/self/pagemap (root), and the module scripts/workload/dmstray (built by capture-qemu for the
 * guest kernel, /dmstray.ko) reads it once with copy_from_kernel_nofault() at load: a not-present kernel fault,
 * fixed up (no oops). Not in the default phase list: run it by name (`wl dmstray`). */
static void ph_dmstray(void)
{
	if (access("/dmstray.ko", R_OK)) { say("dmstray: no /dmstray.ko for this kernel"); return; }
	int fd = (int)syscall(__NR_memfd_secret, 0);
	if (fd < 0) { say("memfd_secret: %s", strerror(errno)); return; }
	if (ftruncate(fd, PG)) { say("ftruncate secret: %s", strerror(errno)); return; }
	volatile char *p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) { say("mmap secret: %s", strerror(errno)); return; }
	p[0] = 0x5a;                                             /* secretmem_fault: removed from the direct map */
	uint64_t e = 0;
	int pm = open("/proc/self/pagemap", O_RDONLY);
	if (pm < 0 || pread(pm, &e, sizeof e, (off_t)((uintptr_t)p / PG * sizeof e)) != (ssize_t)sizeof e || !(e >> 63)) {
		say("dmstray: no pfn from /proc/self/pagemap (%s)", strerror(errno));
		return;
	}
	close(pm);
	unsigned long long pfn = e & ((1ULL << 55) - 1);
	char cmd[128], res[32] = "";
	snprintf(cmd, sizeof cmd, "insmod /dmstray.ko pfn=0x%llx", pfn);
	marker("dmstray insmod pfn=0x%llx", pfn);
	int rc = system(cmd);
	FILE *r = fopen("/sys/module/dmstray/parameters/result", "r");
	if (r) { if (!fgets(res, sizeof res, r)) res[0] = 0; fclose(r); }
	res[strcspn(res, "\n")] = 0;
	marker("dmstray result=%s", res);
	say("dmstray: pfn 0x%llx of a memfd_secret page read through the direct map: insmod=%d result=%s "
	    "(-14: faulted and fixed up)", pfn, rc, res);
	if (system("rmmod dmstray")) say("rmmod dmstray failed");
	p[0] = 0x5b;
	munmap((void *)p, PG);
	close(fd);
}

static const struct { const char *name; void (*fn)(void); } phases[] = {
	{ "fault", ph_fault }, { "pkey", ph_pkey }, { "odirect", ph_odirect },
	{ "writeback", ph_writeback }, { "sendfile", ph_sendfile }, { "vmsplice", ph_vmsplice },
	{ "pvread", ph_pvread }, { "procmem", ph_procmem }, { "iouring", ph_iouring },
	{ "secret", ph_secret }, { "kmapfile", ph_kmapfile }, { "pkmap", ph_pkmap },
	{ "preempt", ph_preempt }, { "pfnmap", ph_pfnmap },
	{ "dmstray", ph_dmstray },                               /* optional: by name only */
};
#define NPHASES (sizeof phases / sizeof phases[0])
#define NDEFAULT (NPHASES - 1)

static void run(unsigned i)
{
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) { say("fork: %s", strerror(errno)); return; }
	if (pid == 0) {
		char comm[16];
		snprintf(comm, sizeof comm, "wl-%s", phases[i].name);
		prctl(PR_SET_NAME, comm);
		marker("wl phase %s", phases[i].name);
		phases[i].fn();
		marker("wl phase %s done", phases[i].name);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) say("phase %s: status 0x%x", phases[i].name, st);
}

int main(int argc, char **argv)
{
	int a = 1;
	if (argc > 2 && !strcmp(argv[1], "-d")) { dir = argv[2]; a = 3; }
	static const char *mk[] = { "/sys/kernel/tracing/trace_marker", "/sys/kernel/debug/tracing/trace_marker" };
	for (unsigned i = 0; i < 2 && marker_fd < 0; i++) marker_fd = open(mk[i], O_WRONLY);
	prctl(PR_SET_NAME, "wl-main");
	marker("wl start");
	if (a == argc) {
		for (unsigned i = 0; i < NDEFAULT; i++) run(i);
	} else {
		for (; a < argc; a++) {
			unsigned i;
			for (i = 0; i < NPHASES && strcmp(phases[i].name, argv[a]); i++) ;
			if (i == NPHASES) { say("unknown phase %s", argv[a]); return 2; }
			run(i);
		}
	}
	prctl(PR_SET_NAME, "wl-done");
	marker("wl done");
	return 0;
}
