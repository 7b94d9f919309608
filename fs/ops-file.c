/* ops-file.c - open files: open, create, read, write, flush, release,
 * fsync, fallocate, lseek and copy_file_range. Each open file keeps one
 * backing descriptor for exactly as long as the client keeps it open. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

static void open_file_reply(fuse_req_t req, fuse_ino_t ino, int fd, struct fuse_file_info *fi,
                            const struct fuse_entry_param *entry)
{
        Mailbagfs *fs = ops_fs(req);
        OpenFile *file = g_new0(OpenFile, 1);
        file->fd = fd;
        file->ino = entry ? entry->ino : ino;
        fi->fh = (uintptr_t)file;
        inode_table_file_opened(fs->inodes, file->ino, fd);

        int r = entry ? fuse_reply_create(req, entry, fi) : fuse_reply_open(req, fi);
        if (r < 0) {
                /* Interrupted: the kernel will never release this handle. */
                inode_table_file_closed(fs->inodes, file->ino, fd);
                close(fd);
                g_free(file);
                if (entry)
                        inode_table_forget(fs->inodes, entry->ino, 1);
        }
}

void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        int error = 0;
        g_autofree char *path = ops_node_path(fs, ino, &error);
        if (!path) {
                ops_reply_status(req, "open", error);
                return;
        }
        /* The kernel resolves symlinks itself and never opens one: a
         * symlink here means the backing name changed under us. */
        autoclose_fd int fd = backing_openat(&fs->backing, path,
                                             (fi->flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW, 0);
        if (fd < 0) {
                ops_reply_status(req, "open", fd == -ELOOP ? -ESTALE : fd);
                return;
        }
        struct stat st;
        int r = fstat(fd, &st) < 0 ? -errno : ops_node_verify(fs, ino, &st);
        if (r < 0) {
                ops_reply_status(req, "open", r);
                return;
        }
        open_file_reply(req, ino, fd_steal(&fd), fi, NULL);
}

void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi)
{
        Mailbagfs *fs = ops_fs(req);
        autoclose_fd int dirfd = ops_dir_open(fs, parent);
        if (dirfd < 0) {
                ops_reply_status(req, "create", dirfd);
                return;
        }
        autoclose_fd int fd = openat(dirfd, name, fi->flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0) {
                ops_reply_status(req, "create", -errno);
                return;
        }
        ops_chown_created(fs, req, dirfd, name);

        struct fuse_entry_param entry;
        int r = ops_make_entry(fs, parent, dirfd, name, &entry);
        if (r < 0) {
                ops_reply_status(req, "create", r);
                return;
        }
        open_file_reply(req, parent, fd_steal(&fd), fi, &entry);
}

void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        /* Hand the descriptor to libfuse, which splices when it can. */
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = ops_open_file(fi)->fd;
        buf.buf[0].pos = off;
        fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void ops_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi)
{
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(bufv));
        out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        out.buf[0].fd = ops_open_file(fi)->fd;
        out.buf[0].pos = off;

        ssize_t written = fuse_buf_copy(&out, bufv, 0);
        if (written < 0)
                ops_reply_status(req, "write", (int)written);
        else
                fuse_reply_write(req, (size_t)written);
}

void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* A client's close() flushes; closing a duplicate gives the backing
         * filesystem (NFS, CIFS) its close-time write-back and errors. */
        int dup_fd = dup(ops_open_file(fi)->fd);
        int r = dup_fd < 0 ? -errno : close(dup_fd) < 0 ? -errno : 0;
        ops_reply_status(req, "flush", r);
}

void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        OpenFile *file = ops_open_file(fi);
        inode_table_file_closed(ops_fs(req)->inodes, file->ino, file->fd);
        close(file->fd);
        g_free(file);
        ops_reply_status(req, "release", 0);
}

void ops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        int fd = ops_open_file(fi)->fd;
        int r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
        ops_reply_status(req, "fsync", r);
}

void ops_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                   struct fuse_file_info *fi)
{
        int r = fallocate(ops_open_file(fi)->fd, mode, offset, length) < 0 ? -errno : 0;
        ops_reply_status(req, "fallocate", r);
}

void ops_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
        off_t result = lseek(ops_open_file(fi)->fd, off, whence);
        if (result < 0)
                ops_reply_status(req, "lseek", -errno);
        else
                fuse_reply_lseek(req, result);
}

void ops_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                         struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                         struct fuse_file_info *fi_out, size_t len, int flags)
{
        ssize_t copied = copy_file_range(ops_open_file(fi_in)->fd, &off_in,
                                         ops_open_file(fi_out)->fd, &off_out, len,
                                         (unsigned)flags);
        if (copied < 0)
                ops_reply_status(req, "copy_file_range", -errno);
        else
                fuse_reply_write(req, (size_t)copied);
}
