/*
 * powerloss.so: an LD_PRELOAD shim that keeps, beside a directory tree (the
 * "root", e.g. an archive), what a disk would still hold of it after a power
 * loss, and can stop the process at a chosen durability point. The crash
 * campaign test-powerloss.sh runs `snaparc import` (and restore) under it.
 *
 * What is durable (the model):
 *
 * - File content: a file's content becomes durable as a whole when it is
 *   synced: fsync(), fdatasync(), msync(MS_SYNC) of a mapping of it, or a
 *   write through a descriptor opened O_DSYNC / O_SYNC (LMDB writes its meta
 *   pages so, on a second descriptor; its data pages with pwrite/writev and
 *   then fdatasync). sync() and syncfs() sync every file. Writes after a
 *   file's last sync are lost (unless SNAPARC_PL_WRITEBACK, below).
 *   sync_file_range() is not a durability point (it flushes no metadata and
 *   no disk cache) and is only counted in the log.
 * - Names (creations, renames, unlinks, mkdir): SNAPARC_PL_NS=strict (POSIX):
 *   a directory's entries become durable when that directory is fsynced,
 *   and only then; a file whose name was never made durable is gone, however
 *   often its content was synced. SNAPARC_PL_NS=journal (ext4/XFS in
 *   practice: the journal commits every name change made so far whenever
 *   anything is synced): every name under the root becomes durable at every
 *   durability point.
 *
 * Durable state is kept per inode ("instance": an inode number seen alive;
 * one whose last name is removed keeps its durable content for the names
 * that still refer to it on the disk), content in STATE/obj/ID, names in
 * memory. The tree as it was when the process started is taken as durable.
 *
 * The process stops (_exit(SNAPARC_PL_EXIT), 86) right *before* durability
 * point number SNAPARC_PL_CRASH_AT (1, 2, ...; 0 or unset: never): that
 * point does not happen. Renames, unlinks and rmdirs under the root are
 * points too (so the real tree left behind is exactly what a kill -9 there
 * leaves); they make nothing durable by themselves. Whether it stops or the
 * process exits on its own, STATE/disk/ is then written: the root as the
 * disk would hold it after a power loss at that moment. STATE/crashed holds
 * the point's number when it stopped. Every point is logged to
 * SNAPARC_PL_LOG (when set) as "N KIND PATH" (PATH relative to the root),
 * the one it stopped before as "crash N KIND PATH".
 *
 * SNAPARC_PL_WRITEBACK=P (0 to 1, default 0): on the disk image, each 4 KiB
 * block of a file still alive is taken from its current content instead of
 * the durable one with probability P (pages the kernel happened to write
 * back), and its length is the current one with probability P
 * (SNAPARC_PL_SEED seeds the choice). 0 is the model above; 1 keeps every
 * write that reached the kernel, though names still follow SNAPARC_PL_NS.
 *
 * Environment: SNAPARC_PL_ROOT (required, an existing directory; unset:
 * the shim does nothing), SNAPARC_PL_STATE (required, an empty directory),
 * SNAPARC_PL_CRASH_AT, SNAPARC_PL_NS, SNAPARC_PL_LOG, SNAPARC_PL_WRITEBACK,
 * SNAPARC_PL_SEED, SNAPARC_PL_REAL_SYNC=1 (also make the real fsync,
 * fdatasync and msync calls under the root: by default they are skipped, as
 * the image does not depend on them). One process: children do not inherit it (the variables
 * are removed at start).
 *
 * Under AddressSanitizer preload the ASan runtime first:
 * LD_PRELOAD="$(gcc -print-file-name=libasan.so):powerloss.so". The shim
 * itself is built without sanitizers.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PL_EXIT 86
#define BLOCK 4096
#define MAX_DEPTH 64

struct ent {
	char *name;
	size_t child;          /* instance */
};

struct inst {
	dev_t dev;
	ino_t ino;
	int live;              /* the inode still has a name in the real tree */
	int is_dir;
	int has_obj;           /* durable content in STATE/obj/ID (else: empty) */
	char path[PATH_MAX];   /* last known real path (for writeback) */
	struct ent *ents;      /* directories: the durable entries */
	size_t nents;
};

static struct {
	int on;
	char root[PATH_MAX];
	size_t root_len;
	char state[PATH_MAX];
	char log[PATH_MAX];
	unsigned long crash_at, events;
	int strict;
	double writeback;
	uint64_t seed;
	struct inst *insts;
	size_t ninsts, cap;
	size_t root_inst;
	int done;              /* the image is written */
	int real_syncs;        /* call the real fsync/fdatasync/msync/sync */
} pl;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- the real functions ---- */

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rmdir)(const char *);

static void *next_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		static const char m[] = "powerloss.so: a libc function is missing\n";

		syscall(SYS_write, 2, m, sizeof(m) - 1);
		_exit(127);
	}
	return p;
}

#define RESOLVE(f) do { void *p_ = next_sym(#f); memcpy(&real_##f, &p_, sizeof(p_)); } while (0)

static void resolve_all(void)
{
	RESOLVE(fsync);
	RESOLVE(fdatasync);
	RESOLVE(msync);
	RESOLVE(sync);
	RESOLVE(syncfs);
	RESOLVE(sync_file_range);
	RESOLVE(write);
	RESOLVE(pwrite);
	RESOLVE(pwrite64);
	RESOLVE(writev);
	RESOLVE(pwritev);
	RESOLVE(pwritev64);
	RESOLVE(rename);
	RESOLVE(renameat);
	RESOLVE(renameat2);
	RESOLVE(unlink);
	RESOLVE(unlinkat);
	RESOLVE(rmdir);
}

/* A wrapper may run before the constructor (another library's constructor). */
static void ensure(void)
{
	if (!real_rmdir)
		resolve_all();
}

static void die(const char *fmt, ...)
{
	char m[PATH_MAX + 200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(m, sizeof(m) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(m) - 2)
		n = (int)sizeof(m) - 2;
	m[n++] = '\n';
	syscall(SYS_write, 2, "powerloss.so: ", 14);
	syscall(SYS_write, 2, m, (size_t)n);
	_exit(126);
}

/* ---- instances ---- */

static size_t inst_get(const struct stat *st, const char *path)
{
	for (size_t i = 0; i < pl.ninsts; i++) {
		struct inst *x = &pl.insts[i];

		if (x->live && x->dev == st->st_dev && x->ino == st->st_ino) {
			if (path)
				snprintf(x->path, sizeof(x->path), "%s", path);
			return i;
		}
	}
	if (pl.ninsts == pl.cap) {
		size_t cap = pl.cap ? pl.cap * 2 : 64;
		struct inst *n = realloc(pl.insts, cap * sizeof(*n));

		if (!n)
			die("out of memory");
		pl.insts = n;
		pl.cap = cap;
	}
	memset(&pl.insts[pl.ninsts], 0, sizeof(pl.insts[0]));
	pl.insts[pl.ninsts].dev = st->st_dev;
	pl.insts[pl.ninsts].ino = st->st_ino;
	pl.insts[pl.ninsts].live = 1;
	pl.insts[pl.ninsts].is_dir = S_ISDIR(st->st_mode);
	if (path)
		snprintf(pl.insts[pl.ninsts].path, PATH_MAX, "%s", path);
	return pl.ninsts++;
}

static void inst_forget(const struct stat *st)
{
	for (size_t i = 0; i < pl.ninsts; i++)
		if (pl.insts[i].live && pl.insts[i].dev == st->st_dev && pl.insts[i].ino == st->st_ino)
			pl.insts[i].live = 0;
}

static void obj_path(char *out, size_t cap, size_t id, const char *suffix)
{
	snprintf(out, cap, "%s/obj/%zu%s", pl.state, id, suffix);
}

/* Copies n bytes (all: n = -1) of in to a new file out. */
static int copy_fd_to(int in, const char *out, off_t n)
{
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct stat st;
	off_t left, off = 0;

	if (fd < 0)
		return -1;
	if (fstat(in, &st) != 0) {
		close(fd);
		return -1;
	}
	left = n < 0 || n > st.st_size ? st.st_size : n;
	while (left > 0) {
		ssize_t k = sendfile(fd, in, &off, (size_t)left);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			close(fd);
			return -1;
		}
		left -= k;
	}
	return close(fd);
}

/* The file's current content becomes the instance's durable content. */
static void make_content_durable(size_t id, const char *path)
{
	char tmp[PATH_MAX + 40], dst[PATH_MAX + 40];
	int in = open(path, O_RDONLY | O_CLOEXEC);

	if (in < 0)
		die("%s: open to copy: %s", path, strerror(errno));
	obj_path(tmp, sizeof(tmp), id, ".tmp");
	obj_path(dst, sizeof(dst), id, "");
	if (copy_fd_to(in, tmp, -1) != 0 || real_rename(tmp, dst) != 0)
		die("%s: copy to %s: %s", path, dst, strerror(errno));
	close(in);
	pl.insts[id].has_obj = 1;
}

static void ents_free(struct inst *x)
{
	for (size_t i = 0; i < x->nents; i++)
		free(x->ents[i].name);
	free(x->ents);
	x->ents = NULL;
	x->nents = 0;
}

/* The directory's current entries become its durable ones; with `deep`,
 * its subdirectories' too, and (`content`) its files' content. */
static void make_dir_durable(size_t id, const char *path, int deep, int content)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t cap = 0;

	if (!d)
		die("%s: opendir: %s", path, strerror(errno));
	ents_free(&pl.insts[id]);
	while ((de = readdir(d)) != NULL) {
		char p[PATH_MAX];
		struct stat st;
		size_t child;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (lstat(p, &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
			continue;
		child = inst_get(&st, p);
		if (pl.insts[id].nents == cap) {
			struct ent *n;

			cap = cap ? cap * 2 : 16;
			if (!(n = realloc(pl.insts[id].ents, cap * sizeof(*n))))
				die("out of memory");
			pl.insts[id].ents = n;
		}
		pl.insts[id].ents[pl.insts[id].nents].name = strdup(de->d_name);
		pl.insts[id].ents[pl.insts[id].nents++].child = child;
		if (deep && S_ISDIR(st.st_mode))
			make_dir_durable(child, p, deep, content);
		else if (content && S_ISREG(st.st_mode))
			make_content_durable(child, p);
	}
	closedir(d);
}

/* ---- the disk image ---- */

static uint64_t rnd(void)
{
	pl.seed ^= pl.seed << 13;
	pl.seed ^= pl.seed >> 7;
	pl.seed ^= pl.seed << 17;
	return pl.seed;
}

static int coin(double p)
{
	return p > 0 && (double)(rnd() >> 11) / 9007199254740992.0 < p;
}

static void put_file(size_t id, const char *out)
{
	struct inst *x = &pl.insts[id];
	char obj[PATH_MAX + 40];
	int in = -1, cur = -1, fd;
	struct stat st, cst;
	off_t size = 0;

	obj_path(obj, sizeof(obj), id, "");
	if (x->has_obj && (in = open(obj, O_RDONLY | O_CLOEXEC)) >= 0 && fstat(in, &st) == 0)
		size = st.st_size;
	if (pl.writeback > 0 && x->live && x->path[0] && (cur = open(x->path, O_RDONLY | O_CLOEXEC)) >= 0 &&
	    (fstat(cur, &cst) != 0 || cst.st_ino != x->ino || cst.st_dev != x->dev)) {
		close(cur);
		cur = -1;
	}
	if (cur < 0) {
		if (in >= 0) {
			if (copy_fd_to(in, out, -1) != 0)
				die("%s: write: %s", out, strerror(errno));
			close(in);
		} else if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 || close(fd) != 0) {
			die("%s: create: %s", out, strerror(errno));
		}
		return;
	}
	/* each block from the durable or the current content */
	{
		off_t len = coin(pl.writeback) ? cst.st_size : size, end = size > cst.st_size ? size : cst.st_size;
		static uint8_t a[BLOCK], b[BLOCK];

		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die("%s: create: %s", out, strerror(errno));
		for (off_t off = 0; off < end && off < len; off += BLOCK) {
			ssize_t na = 0, nb = 0;
			const uint8_t *src;

			memset(a, 0, sizeof(a));
			memset(b, 0, sizeof(b));
			if (in >= 0 && off < size)
				na = pread(in, a, BLOCK, off);
			if (off < cst.st_size)
				nb = pread(cur, b, BLOCK, off);
			if (na < 0 || nb < 0)
				die("%s: read: %s", out, strerror(errno));
			src = coin(pl.writeback) ? b : a;
			if (pwrite(fd, src, (size_t)(len - off < BLOCK ? len - off : BLOCK), off) < 0)
				die("%s: write: %s", out, strerror(errno));
		}
		if (ftruncate(fd, len) != 0)
			die("%s: truncate: %s", out, strerror(errno));
		close(fd);
		close(cur);
		if (in >= 0)
			close(in);
	}
}

static void put_dir(size_t id, const char *out, int depth)
{
	struct inst *x = &pl.insts[id];

	if (mkdir(out, 0755) != 0 && errno != EEXIST)
		die("%s: mkdir: %s", out, strerror(errno));
	if (depth > MAX_DEPTH)
		return;
	for (size_t i = 0; i < x->nents; i++) {
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/%s", out, x->ents[i].name);
		if (access(p, F_OK) == 0)
			continue;   /* a name listed twice (a move made durable on one side only) */
		if (pl.insts[x->ents[i].child].is_dir)
			put_dir(x->ents[i].child, p, depth + 1);
		else
			put_file(x->ents[i].child, p);
	}
}

static void write_image(void)
{
	char p[PATH_MAX + 40];

	if (pl.done)
		return;
	pl.done = 1;
	snprintf(p, sizeof(p), "%s/disk", pl.state);
	put_dir(pl.root_inst, p, 0);
}

/* ---- events ---- */

static void log_line(const char *fmt, ...)
{
	char m[PATH_MAX + 200];
	va_list ap;
	int fd, n;

	if (!pl.log[0])
		return;
	va_start(ap, fmt);
	n = vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(m))
		return;
	fd = open(pl.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (real_write(fd, m, (size_t)n) < 0) {
			/* nothing to do */
		}
		close(fd);
	}
}

static const char *rel(const char *path)
{
	return path[pl.root_len] ? path + pl.root_len + 1 : ".";
}

static int under_root(const char *path)
{
	return !strncmp(path, pl.root, pl.root_len) && (path[pl.root_len] == '/' || !path[pl.root_len]);
}

static int fd_path(int fd, char *out, size_t cap)
{
	char l[64];
	ssize_t n;

	snprintf(l, sizeof(l), "/proc/self/fd/%d", fd);
	n = readlink(l, out, cap - 1);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* An absolute path for (dirfd, path) without following its last part. */
static int abs_path(int dirfd, const char *path, char *out, size_t cap)
{
	char base[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX * 2 + 2], *slash;

	if (path[0] == '/')
		snprintf(tmp, sizeof(tmp), "%s", path);
	else if (dirfd == AT_FDCWD) {
		if (!getcwd(base, sizeof(base)))
			return -1;
		snprintf(tmp, sizeof(tmp), "%s/%s", base, path);
	} else {
		if (fd_path(dirfd, base, sizeof(base)) != 0)
			return -1;
		snprintf(tmp, sizeof(tmp), "%s/%s", base, path);
	}
	while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/')
		tmp[strlen(tmp) - 1] = '\0';
	slash = strrchr(tmp, '/');
	*slash = '\0';
	if (!realpath(tmp[0] ? tmp : "/", dir))
		return -1;
	snprintf(out, cap, "%s/%s", strcmp(dir, "/") ? dir : "", slash + 1);
	return 0;
}

/* Counts a point; stops before it when it is the chosen one. */
static void point(const char *kind, const char *path)
{
	pl.events++;
	if (pl.crash_at && pl.events == pl.crash_at) {
		char p[PATH_MAX + 40], n[32];
		int fd, len;

		log_line("crash %lu %s %s\n", pl.events, kind, rel(path));
		write_image();
		snprintf(p, sizeof(p), "%s/crashed", pl.state);
		len = snprintf(n, sizeof(n), "%lu\n", pl.events);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) >= 0) {
			if (real_write(fd, n, (size_t)len) < 0) {
				/* the exit status says it too */
			}
			close(fd);
		}
		_exit(PL_EXIT);
	}
	log_line("%lu %s %s\n", pl.events, kind, rel(path));
}

/* journal: every name under the root becomes durable */
static void journal_commit(void)
{
	if (!pl.strict)
		make_dir_durable(pl.root_inst, pl.root, 1, 0);
}

/* A sync of fd: counted, done, then its effect recorded. */
static int synced(int fd, const char *kind, int (*fn)(int))
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	ensure();

	if (!pl.on || fd_path(fd, path, sizeof(path)) != 0 || !under_root(path) || fstat(fd, &st) != 0)
		return fn(fd);
	pthread_mutex_lock(&mu);
	point(kind, path);
	rc = pl.real_syncs ? fn(fd) : 0;
	if (rc == 0) {
		size_t id = inst_get(&st, path);

		journal_commit();
		if (S_ISDIR(st.st_mode))
			make_dir_durable(id, path, 0, 0);
		else if (S_ISREG(st.st_mode))
			make_content_durable(id, path);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int fsync(int fd)
{
	ensure();
	return synced(fd, "fsync", real_fsync);
}

int fdatasync(int fd)
{
	ensure();
	return synced(fd, "fdatasync", real_fdatasync);
}

int syncfs(int fd)
{
	int rc;

	ensure();

	if (!pl.on)
		return real_syncfs(fd);
	pthread_mutex_lock(&mu);
	point("syncfs", pl.root);
	rc = pl.real_syncs ? real_syncfs(fd) : 0;
	if (rc == 0)
		make_dir_durable(pl.root_inst, pl.root, 1, 1);
	pthread_mutex_unlock(&mu);
	return rc;
}

void sync(void)
{
	ensure();
	if (!pl.on) {
		real_sync();
		return;
	}
	pthread_mutex_lock(&mu);
	point("sync", pl.root);
	if (pl.real_syncs)
		real_sync();
	make_dir_durable(pl.root_inst, pl.root, 1, 1);
	pthread_mutex_unlock(&mu);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	char path[PATH_MAX];

	ensure();

	if (pl.on && fd_path(fd, path, sizeof(path)) == 0 && under_root(path))
		log_line("- sync_file_range %s (not a durability point)\n", rel(path));
	return real_sync_file_range(fd, off, n, flags);
}

/* The file mapped at addr, from /proc/self/maps. */
static int mapped_path(const void *addr, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[PATH_MAX + 200];
	int found = -1;

	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		int at = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) >= 2 && at > 0 &&
		    (uintptr_t)addr >= lo && (uintptr_t)addr < hi && line[at] == '/') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, cap, "%s", line + at);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

int msync(void *addr, size_t len, int flags)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	ensure();

	if (!pl.on || !(flags & MS_SYNC) || mapped_path(addr, path, sizeof(path)) != 0 || !under_root(path) ||
	    stat(path, &st) != 0)
		return real_msync(addr, len, flags);
	pthread_mutex_lock(&mu);
	point("msync", path);
	rc = real_msync(addr, len, pl.real_syncs ? flags : (flags & ~MS_SYNC) | MS_ASYNC);
	if (rc == 0) {
		journal_commit();
		make_content_durable(inst_get(&st, path), path);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* Writes: through an O_DSYNC / O_SYNC descriptor each one is a sync. */
static int dsync_path(int fd, char *path, size_t cap, struct stat *st)
{
	int fl;

	ensure();

	if (!pl.on || (fl = fcntl(fd, F_GETFL)) < 0 || !(fl & O_DSYNC))
		return 0;
	return fd_path(fd, path, cap) == 0 && under_root(path) && fstat(fd, st) == 0 && S_ISREG(st->st_mode);
}

#define DSYNC_WRITE(call) do { \
	char path_[PATH_MAX]; \
	struct stat st_; \
	ssize_t rc_; \
	if (!dsync_path(fd, path_, sizeof(path_), &st_)) \
		return call; \
	pthread_mutex_lock(&mu); \
	point("dsync-write", path_); \
	rc_ = call; \
	if (rc_ >= 0) { \
		journal_commit(); \
		make_content_durable(inst_get(&st_, path_), path_); \
	} \
	pthread_mutex_unlock(&mu); \
	return rc_; \
} while (0)

ssize_t write(int fd, const void *p, size_t n)
{
	DSYNC_WRITE(real_write(fd, p, n));
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
	DSYNC_WRITE(real_pwrite(fd, p, n, off));
}

ssize_t pwrite64(int fd, const void *p, size_t n, off64_t off)
{
	DSYNC_WRITE(real_pwrite64(fd, p, n, off));
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	DSYNC_WRITE(real_writev(fd, iov, n));
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	DSYNC_WRITE(real_pwritev(fd, iov, n, off));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off64_t off)
{
	DSYNC_WRITE(real_pwritev64(fd, iov, n, off));
}

/* Names: points; an inode that loses its last name is forgotten. */
static int name_op(const char *kind, int dirfd, const char *path, int todirfd, const char *to,
		   int (*op)(void *), void *ctx)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct stat sa, sb;
	int rc, ga, gb = 0, in, exchange = !strcmp(kind, "rename-exchange");

	ensure();

	if (!pl.on || abs_path(dirfd, path, a, sizeof(a)) != 0 || (to && abs_path(todirfd, to, b, sizeof(b)) != 0))
		return op(ctx);
	in = under_root(a) || (to && under_root(b));
	if (!in)
		return op(ctx);
	pthread_mutex_lock(&mu);
	point(kind, under_root(a) ? a : b);
	ga = lstat(a, &sa) == 0;
	if (to)
		gb = lstat(b, &sb) == 0 && !(ga && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev);
	rc = op(ctx);
	if (rc == 0 && exchange) {
		/* both inodes keep a name: each is known by its new one */
		struct stat now;

		if (lstat(a, &now) == 0)
			inst_get(&now, a);
		if (lstat(b, &now) == 0)
			inst_get(&now, b);
	} else if (rc == 0) {
		if (!to && ga && (S_ISDIR(sa.st_mode) || sa.st_nlink <= 1))
			inst_forget(&sa);
		if (to && gb && (S_ISDIR(sb.st_mode) || sb.st_nlink <= 1))
			inst_forget(&sb);
		if (to && ga) {
			struct stat now;

			if (lstat(b, &now) == 0)
				inst_get(&now, b);
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

struct op_args {
	int dfd1, dfd2, flags;
	unsigned int uflags;
	const char *p1, *p2;
};

static int do_rename(void *c) { struct op_args *o = c; return real_rename(o->p1, o->p2); }
static int do_renameat(void *c) { struct op_args *o = c; return real_renameat(o->dfd1, o->p1, o->dfd2, o->p2); }
static int do_renameat2(void *c) { struct op_args *o = c; return real_renameat2(o->dfd1, o->p1, o->dfd2, o->p2, o->uflags); }
static int do_unlink(void *c) { struct op_args *o = c; return real_unlink(o->p1); }
static int do_unlinkat(void *c) { struct op_args *o = c; return real_unlinkat(o->dfd1, o->p1, o->flags); }
static int do_rmdir(void *c) { struct op_args *o = c; return real_rmdir(o->p1); }

int rename(const char *from, const char *to)
{
	struct op_args o = { .p1 = from, .p2 = to };

	return name_op("rename", AT_FDCWD, from, AT_FDCWD, to, do_rename, &o);
}

int renameat(int d1, const char *from, int d2, const char *to)
{
	struct op_args o = { .dfd1 = d1, .p1 = from, .dfd2 = d2, .p2 = to };

	return name_op("rename", d1, from, d2, to, do_renameat, &o);
}

int renameat2(int d1, const char *from, int d2, const char *to, unsigned int flags)
{
	struct op_args o = { .dfd1 = d1, .p1 = from, .dfd2 = d2, .p2 = to, .uflags = flags };

	/* RENAME_EXCHANGE keeps both inodes alive: nothing is forgotten then */
	if (flags & RENAME_EXCHANGE)
		return name_op("rename-exchange", d1, from, d2, to, do_renameat2, &o);
	return name_op("rename", d1, from, d2, to, do_renameat2, &o);
}

int unlink(const char *path)
{
	struct op_args o = { .p1 = path };

	return name_op("unlink", AT_FDCWD, path, AT_FDCWD, NULL, do_unlink, &o);
}

int unlinkat(int dfd, const char *path, int flags)
{
	struct op_args o = { .dfd1 = dfd, .p1 = path, .flags = flags };

	return name_op(flags & AT_REMOVEDIR ? "rmdir" : "unlink", dfd, path, AT_FDCWD, NULL, do_unlinkat, &o);
}

int rmdir(const char *path)
{
	struct op_args o = { .p1 = path };

	return name_op("rmdir", AT_FDCWD, path, AT_FDCWD, NULL, do_rmdir, &o);
}

/* ---- start and end ---- */

__attribute__((constructor)) static void pl_start(void)
{
	const char *root = getenv("SNAPARC_PL_ROOT"), *state = getenv("SNAPARC_PL_STATE");
	const char *v;
	char p[PATH_MAX + 40];
	struct stat st;

	resolve_all();
	if (!root || !*root)
		return;
	if (!state || !*state)
		die("SNAPARC_PL_STATE is not set");
	if (!realpath(root, pl.root))
		die("%s: %s", root, strerror(errno));
	if (!realpath(state, pl.state))
		die("%s: %s", state, strerror(errno));
	pl.root_len = strlen(pl.root);
	pl.crash_at = (v = getenv("SNAPARC_PL_CRASH_AT")) ? strtoul(v, NULL, 10) : 0;
	pl.strict = !(v = getenv("SNAPARC_PL_NS")) || strcmp(v, "journal") != 0;
	pl.writeback = (v = getenv("SNAPARC_PL_WRITEBACK")) ? strtod(v, NULL) : 0;
	pl.seed = (v = getenv("SNAPARC_PL_SEED")) ? strtoull(v, NULL, 10) * 2654435761u + 1 : 88172645463325252ull;
	if ((v = getenv("SNAPARC_PL_LOG")))
		snprintf(pl.log, sizeof(pl.log), "%s", v);
	snprintf(p, sizeof(p), "%s/obj", pl.state);
	if (mkdir(p, 0755) != 0)
		die("%s: %s (SNAPARC_PL_STATE must be empty)", p, strerror(errno));
	if (stat(pl.root, &st) != 0 || !S_ISDIR(st.st_mode))
		die("%s: not a directory", pl.root);
	/* the tree as it is now is taken as durable */
	pl.root_inst = inst_get(&st, pl.root);
	make_dir_durable(pl.root_inst, pl.root, 1, 1);
	/* not for children */
	unsetenv("SNAPARC_PL_ROOT");
	unsetenv("LD_PRELOAD");
	/* the real syncs change nothing the image shows: skipped, unless asked for */
	pl.real_syncs = (v = getenv("SNAPARC_PL_REAL_SYNC")) && *v == '1';
	pl.on = 1;
}

__attribute__((destructor)) static void pl_end(void)
{
	if (!pl.on)
		return;
	pthread_mutex_lock(&mu);
	write_image();
	pl.on = 0;
	pthread_mutex_unlock(&mu);
}
