/* mountinfo.c - parses /proc/PID/mountinfo. */
#include "mountinfo.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "po-error.h"

void po_mount_free(PoMount *mount)
{
        if (!mount)
                return;
        g_free(mount->root);
        g_free(mount->mount_point);
        g_free(mount->fstype);
        g_free(mount->source);
        g_free(mount->super_options);
        g_free(mount);
}

/* mountinfo writes a space, tab, newline or backslash in a path as a
 * backslash and three octal digits. */
static char *mountinfo_unescape(const char *field)
{
        GString *out = g_string_sized_new(strlen(field));
        for (const char *p = field; *p; p++) {
                bool octal = p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
                             p[2] <= '7' && p[3] >= '0' && p[3] <= '7';
                if (!octal) {
                        g_string_append_c(out, *p);
                        continue;
                }
                g_string_append_c(out,
                                  (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0')));
                p += 3;
        }
        return g_string_free(out, FALSE);
}

static bool mountinfo_number(const char *text, char end, unsigned long *value, const char **rest)
{
        char *stop = NULL;
        if (!g_ascii_isdigit(*text))
                return false;
        *value = strtoul(text, &stop, 10);
        if (*stop != end)
                return false;
        *rest = stop + 1;
        return true;
}

/* ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - TYPE SOURCE
 * SUPER-OPTIONS */
static PoMount *mountinfo_line(const char *line, guint number, GError **error)
{
        g_auto(GStrv) fields = g_strsplit(line, " ", -1);
        guint count = g_strv_length(fields);
        guint separator = 6;
        while (separator < count && strcmp(fields[separator], "-") != 0)
                separator++;
        unsigned long id = 0, major = 0, minor = 0;
        const char *rest = NULL;
        if (separator + 2 >= count || !mountinfo_number(fields[0], '\0', &id, &rest) ||
            !mountinfo_number(fields[2], ':', &major, &rest) ||
            !mountinfo_number(rest, '\0', &minor, &rest) || id > G_MAXINT) {
                g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT,
                            "line %u: expected an id, a device, a mount point, a "
                            "\"-\", a type and a source",
                            number);
                return NULL;
        }
        PoMount *mount = g_new0(PoMount, 1);
        mount->id = (int)id;
        mount->dev = makedev(major, minor);
        mount->root = mountinfo_unescape(fields[3]);
        mount->mount_point = mountinfo_unescape(fields[4]);
        mount->fstype = g_strdup(fields[separator + 1]);
        mount->source = mountinfo_unescape(fields[separator + 2]);
        mount->super_options = g_strdup(separator + 3 < count ? fields[separator + 3] : "");
        return mount;
}

GPtrArray *po_mounts_parse(const char *text, GError **error)
{
        g_autoptr(GPtrArray) mounts = g_ptr_array_new_with_free_func((GDestroyNotify)po_mount_free);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (guint i = 0; lines[i]; i++) {
                if (*lines[i] == '\0')
                        continue;
                PoMount *mount = mountinfo_line(lines[i], i + 1, error);
                if (mount == NULL)
                        return NULL;
                g_ptr_array_add(mounts, mount);
        }
        return g_steal_pointer(&mounts);
}

const PoMount *po_mounts_find_id(const GPtrArray *mounts, int id)
{
        for (guint i = 0; i < mounts->len; i++) {
                const PoMount *mount = mounts->pdata[i];
                if (mount->id == id)
                        return mount;
        }
        return NULL;
}

bool po_mounts_path_within(const char *path, const char *dir)
{
        if (strcmp(dir, "/") == 0)
                return true;
        gsize len = strlen(dir);
        return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

const PoMount *po_mounts_of_path(const GPtrArray *mounts, const char *path)
{
        const PoMount *top = NULL;
        for (guint i = 0; i < mounts->len; i++) {
                const PoMount *mount = mounts->pdata[i];
                if (po_mounts_path_within(path, mount->mount_point) &&
                    (!top || strlen(mount->mount_point) >= strlen(top->mount_point)))
                        top = mount;
        }
        return top;
}
