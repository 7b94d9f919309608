/* po-file.h - small bounded file helpers shared by the format modules.
 *
 * Postoffice files are small (the largest, a full .MBG, is 475,136 bytes),
 * so a whole-file read with an upper bound is the simple safe way: a file
 * larger than its format allows is reported, never read into memory.
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* Reads all of @fd from offset 0. Fails with PO_FORMAT_ERROR_CORRUPT when the
 * file is larger than @max_len (naming @name), _IO on a system error or
 * when it is not a regular file (po_file_read opens a FIFO without
 * waiting, then refuses it). The
 * returned buffer is never NULL on success (an empty file gives a 1-byte
 * allocation and *@len = 0). */
bool po_file_read_fd(int fd, gsize max_len, const char *name, guint8 **data,
                     gsize *len, GError **error);
bool po_file_read(const char *path, gsize max_len, guint8 **data, gsize *len,
                  GError **error);
/* pread/pwrite exactly @len bytes (retrying short transfers and EINTR). A
 * short read (end of file) is PO_FORMAT_ERROR_CORRUPT at @offset. */
bool po_file_pread_exact(int fd, void *buf, gsize len, goffset offset,
                         const char *name, GError **error);
bool po_file_pwrite_all(int fd, const void *buf, gsize len, goffset offset,
                        const char *name, GError **error);
/* Creates or truncates @path (mode 0644) and writes @data. */
bool po_file_write(const char *path, const void *data, gsize len,
                   GError **error);

/* Closes an fd when it goes out of scope (glib 2.74 has no g_autofd). */
static inline void po_file_close_fd(int *fd)
{
        if (*fd >= 0)
                g_close(*fd, NULL);
}
#define po_auto_fd __attribute__((cleanup(po_file_close_fd))) int

G_END_DECLS
