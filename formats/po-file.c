/* po-file.c - bounded whole-file reads and exact positional I/O. Every
 * failure names the file; nothing here logs or aborts. */
#include "po-file.h"
#include "po-error.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

bool po_file_pread_exact(int fd, void *buf, gsize len, goffset offset,
                         const char *name, GError **error)
{
        guint8 *p = buf;
        gsize done = 0;
        while (done < len) {
                ssize_t n = pread(fd, p + done, len - done, offset + done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        po_format_set_io(error, name, errno, "read");
                        return false;
                }
                if (n == 0) {
                        po_format_set_corrupt(error, name, offset + done,
                                              "%" G_GSIZE_FORMAT " more bytes, found end of file",
                                              len - done);
                        return false;
                }
                done += n;
        }
        return true;
}

bool po_file_pwrite_all(int fd, const void *buf, gsize len, goffset offset,
                        const char *name, GError **error)
{
        const guint8 *p = buf;
        gsize done = 0;
        while (done < len) {
                ssize_t n = pwrite(fd, p + done, len - done, offset + done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        po_format_set_io(error, name, errno, "write");
                        return false;
                }
                done += n;
        }
        return true;
}

bool po_file_read_fd(int fd, gsize max_len, const char *name, guint8 **data,
                     gsize *len, GError **error)
{
        struct stat st;
        if (fstat(fd, &st) < 0) {
                po_format_set_io(error, name, errno, "stat");
                return false;
        }
        /* A FIFO would block the reader, a device never end: a postoffice
         * file is a regular file or nothing. */
        if (!S_ISREG(st.st_mode)) {
                po_format_set_io(error, name, S_ISDIR(st.st_mode) ? EISDIR : EINVAL,
                                 "not a regular file");
                return false;
        }
        if (st.st_size < 0 || (guint64)st.st_size > max_len) {
                po_format_set_corrupt(error, name, max_len,
                                      "at most %" G_GSIZE_FORMAT " bytes, file has %" G_GINT64_FORMAT,
                                      max_len, (gint64)st.st_size);
                return false;
        }
        /* Read one byte more than stat said, so a file that grew meanwhile
         * is still bounded by max_len. */
        gsize cap = (gsize)st.st_size + 1;
        g_autofree guint8 *buf = g_malloc(cap);
        gsize done = 0;
        for (;;) {
                ssize_t n = pread(fd, buf + done, cap - done, done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        po_format_set_io(error, name, errno, "read");
                        return false;
                }
                if (n == 0)
                        break;
                done += n;
                if (done == cap) {
                        if (cap > max_len) {
                                po_format_set_corrupt(error, name, max_len,
                                                      "at most %" G_GSIZE_FORMAT " bytes",
                                                      max_len);
                                return false;
                        }
                        cap = MIN(cap * 2, max_len + 1);
                        buf = g_realloc(buf, cap);
                }
        }
        *data = g_steal_pointer(&buf);
        *len = done;
        return true;
}

bool po_file_read(const char *path, gsize max_len, guint8 **data, gsize *len,
                  GError **error)
{
        /* O_NONBLOCK: the open of a FIFO must not wait for a writer. */
        po_auto_fd fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                po_format_set_io(error, path, errno, "open");
                return false;
        }
        return po_file_read_fd(fd, max_len, path, data, len, error);
}

bool po_file_write(const char *path, const void *data, gsize len,
                   GError **error)
{
        po_auto_fd fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                po_format_set_io(error, path, errno, "create");
                return false;
        }
        return po_file_pwrite_all(fd, data, len, 0, path, error);
}
