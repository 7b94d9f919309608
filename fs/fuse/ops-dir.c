/* ops-dir.c - directory listing, and the one request made on a directory
 * handle (an operator's freeze of a postoffice). A directory handle keeps
 * its backing descriptor open while the client lists it; offsets are the
 * backing directory's own telldir() cookies, so a listing resumes where it
 * left off even across getdents calls. */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "freeze.h"
#include "status-line.h"

typedef struct {
        DIR *stream;
        off_t offset;          /* where the stream is; the kernel serialises readdir per handle */
        struct dirent *pending; /* read but not yet returned (the reply buffer was full) */
} OpenDir;

static OpenDir *open_dir_of(struct fuse_file_info *fi)
{
        return (OpenDir *)(uintptr_t)fi->fh;
}

void ops_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        g_autoptr(GRWLockReaderLocker) names = g_rw_lock_reader_locker_new(&fs->names_lock);
        int error = 0;
        g_autofree char *path = ops_node_path(fs, ino, &error);
        if (!path) {
                ops_reply_status(req, OPS_OPENDIR, error);
                return;
        }
        /* O_DIRECTORY opens nothing else, so opening before the check
         * has no effect on a file swapped in; listing one would show
         * names the kernel never checked the caller may read. */
        struct stat st;
        autoclose_fd int fd = ops_node_check(
                fs, ino,
                ops_walk_again(backing_openat(&fs->backing, path, O_RDONLY | O_DIRECTORY, 0), true),
                &st);
        if (fd < 0) {
                ops_reply_status(req, OPS_OPENDIR, fd);
                return;
        }
        DIR *stream = fdopendir(fd);
        if (!stream) {
                ops_reply_status(req, OPS_OPENDIR, -errno);
                return;
        }
        fd_steal(&fd);

        OpenDir *dir = g_new0(OpenDir, 1);
        dir->stream = stream;
        fi->fh = (uintptr_t)dir;
        if (fuse_reply_open(req, fi) < 0) {
                closedir(stream);
                g_free(dir);
        }
}

void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        OpenDir *dir = open_dir_of(fi);
        g_autofree char *buf = g_malloc(size);
        size_t used = 0;

        if (off != dir->offset) {
                seekdir(dir->stream, off);
                dir->pending = NULL;
                dir->offset = off;
        }
        for (;;) {
                if (!dir->pending) {
                        errno = 0;
                        dir->pending = readdir(dir->stream);
                        if (!dir->pending) {
                                if (errno && used == 0) {
                                        ops_reply_status(req, OPS_READDIR, -errno);
                                        return;
                                }
                                break;
                        }
                }
                struct dirent *entry = dir->pending;
                if (ops_name_reserved(entry->d_name)) {
                        dir->pending = NULL;
                        dir->offset = telldir(dir->stream);
                        continue;
                }
                struct stat st = {
                        .st_ino = entry->d_ino,
                        .st_mode = (mode_t)DTTOIF(entry->d_type),
                };
                off_t next = telldir(dir->stream);
                size_t need = fuse_add_direntry(req, buf + used, size - used, entry->d_name,
                                                &st, next);
                if (need > size - used)
                        break;
                used += need;
                dir->pending = NULL;
                dir->offset = next;
        }
        fuse_reply_buf(req, buf, used);
}

void ops_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        OpenDir *dir = open_dir_of(fi);
        closedir(dir->stream);
        g_free(dir);
        ops_reply_status(req, OPS_RELEASEDIR, 0);
}

void ops_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        int fd = dirfd(open_dir_of(fi)->stream);
        int r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
        ops_reply_status(req, OPS_FSYNCDIR, r);
}

void ops_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
               struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
               size_t out_bufsz)
{
        (void)arg;
        (void)fi;
        (void)out_bufsz;
        if (cmd != PO_FREEZE_IOCTL || !(flags & FUSE_IOCTL_DIR) || in_bufsz != sizeof(uint32_t)) {
                ops_reply_status(req, OPS_IOCTL, -ENOTTY);
                return;
        }
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        if (ctx->uid != 0) {
                ops_reply_status(req, OPS_IOCTL, -EPERM);
                return;
        }
        uint32_t timeout_ms;
        memcpy(&timeout_ms, in_buf, sizeof(timeout_ms));
        Mailbagfs *fs = ops_fs(req);
        int error = 0;
        g_autofree char *path = ops_node_path(fs, ino, &error);
        /* Waits for the whole freeze: a directory handle's request holds
         * no lock of the folder, in the kernel or here. */
        int r = path ? freeze_folder(&fs->mailbags, path, ctx->pid, timeout_ms) : error;
        if (r < 0)
                ops_reply_status(req, OPS_IOCTL, r);
        else
                fuse_reply_ioctl(req, 0, NULL, 0);
}
