/* status-attr.c - getxattr() of the daemon's status attributes. */
#include "status-attr.h"
#include "po-error.h"
#include "status-line.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Pages followed at most: 60 MB of status. */
#define STATUS_ATTR_PAGES_MAX 1000

/* Whether @line is "more NAME" (PO_STATUS_PAGE_MAX): the next page. */
static const char *status_attr_more(const PoStatusLine *line, const char *name)
{
        const char *next = po_status_line_word(line, 1);
        if (po_status_line_n_words(line) != 2 || po_status_line_n_fields(line) != 0 ||
            strcmp(po_status_line_word(line, 0), PO_STATUS_MORE_WORD) != 0 ||
            !g_str_has_prefix(next, name) || next[strlen(name)] != '.')
                return NULL;
        return next;
}

GPtrArray *status_attr_read_lines(const char *path, const char *name, GError **error)
{
        GPtrArray *all = NULL;
        g_autofree char *page = g_strdup(name);
        for (guint n = 0; page && n < STATUS_ATTR_PAGES_MAX; n++) {
                gsize len = 0;
                g_autofree char *value = status_attr_read(path, page, &len);
                if (value == NULL) {
                        int saved = errno;
                        g_clear_pointer(&all, g_ptr_array_unref);
                        errno = saved;
                        return NULL;
                }
                g_autofree char *origin = g_strdup_printf("%s: %s", path, page);
                GPtrArray *lines = po_status_parse(value, len, origin, error);
                if (lines == NULL) {
                        g_clear_pointer(&all, g_ptr_array_unref);
                        errno = EBADMSG;
                        return NULL;
                }
                /* A long value comes in pages, each but the last ending
                 * with the name of the next. */
                g_clear_pointer(&page, g_free);
                const char *more = lines->len ? status_attr_more(lines->pdata[lines->len - 1], name)
                                              : NULL;
                if (more) {
                        page = g_strdup(more);
                        g_ptr_array_remove_index(lines, lines->len - 1);
                }
                if (!all) {
                        all = lines;
                        continue;
                }
                for (guint i = 0; i < lines->len; i++)
                        g_ptr_array_add(all, g_steal_pointer(&lines->pdata[i]));
                g_ptr_array_set_free_func(lines, NULL);
                g_ptr_array_unref(lines);
        }
        return all;
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

char *status_attr_mode(const char *dir)
{
        /* Only the mount root has the attribute: from @dir upwards, but not
         * past the mount's root (the last folder on its device), so that a
         * daemon without modes inside another daemon's mount reads as what
         * it is. */
        g_autofree char *path = realpath(dir, NULL);
        struct stat start;
        if (path == NULL || stat(path, &start) < 0)
                return g_strdup(PO_STATUS_MODE_ENFORCE);
        for (;;) {
                g_autofree char *value = status_attr_read(path, PO_STATUS_ATTR_MODE, NULL);
                if (value) {
                        g_strstrip(value);
                        return g_strdup(value[0] ? value : PO_STATUS_MODE_ENFORCE);
                }
                g_autofree char *parent = g_path_get_dirname(path);
                struct stat up;
                if (strcmp(parent, path) == 0 || stat(parent, &up) < 0 || up.st_dev != start.st_dev)
                        return g_strdup(PO_STATUS_MODE_ENFORCE);
                g_free(path);
                path = g_steal_pointer(&parent);
        }
}

bool status_attr_observing(const char *dir)
{
        g_autofree char *mode = status_attr_mode(dir);
        return strcmp(mode, PO_STATUS_MODE_OBSERVE) == 0;
}
