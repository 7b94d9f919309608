/* status-attr.c - getxattr() of the daemon's status attributes. */
#include "status-attr.h"
#include "po-error.h"
#include "status-line.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

char *status_attr_read(const char *path, const char *name, gsize *len)
{
        /* A value can grow between the size query and the read (ERANGE):
         * a few tries, as the lease table changes only so fast. */
        for (int attempt = 0; attempt < 4; attempt++) {
                ssize_t size = getxattr(path, name, NULL, 0);
                if (size < 0)
                        return NULL;
                char *value = g_malloc((gsize)size + 1);
                ssize_t got = getxattr(path, name, value, (size_t)size);
                if (got >= 0) {
                        value[got] = '\0';
                        if (len)
                                *len = (gsize)got;
                        return value;
                }
                int saved = errno;
                g_free(value);
                errno = saved;
                if (errno != ERANGE)
                        return NULL;
        }
        return NULL;
}

GPtrArray *status_attr_read_lines(const char *path, const char *name, GError **error)
{
        gsize len = 0;
        g_autofree char *value = status_attr_read(path, name, &len);
        if (value == NULL)
                return NULL;
        g_autofree char *origin = g_strdup_printf("%s: %s", path, name);
        GPtrArray *lines = po_status_parse(value, len, origin, error);
        if (lines == NULL)
                errno = EBADMSG;
        return lines;
}

bool status_attr_is_protected(const char *dir)
{
        return getxattr(dir, PO_STATUS_ATTR_STATS, NULL, 0) >= 0;
}

char *status_attr_enclosing_mount(const char *dir)
{
        g_autofree char *path = realpath(dir, NULL);
        if (path == NULL)
                return NULL;
        while (strcmp(path, "/") != 0) {
                char *parent = g_path_get_dirname(path);
                g_free(path);
                path = parent;
                if (status_attr_is_protected(path))
                        return g_steal_pointer(&path);
        }
        return NULL;
}
