/* coherence.c - refuses a backing directory on a cluster client that
 * caches what other nodes change (coherence.h). */
#include "coherence.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing.h"
#include "fd-util.h"
#include "mountinfo.h"

#define GLUSTER_FSTYPE "fuse.glusterfs"
/* Bounds for what .meta gives: a command line, a graph of translators. */
#define META_FILE_MAX 65536
#define GRAPH_TRANSLATORS_MAX 256

/* The client's kernel cache settings that must be 0: each lets the kernel
 * answer from what it saw earlier (a size, a name, a missing name). Their
 * defaults: 1, 1 and 0 s; the recipe sets all three. */
static const char *const gluster_zero_timeouts[] = {
        "attribute-timeout",
        "entry-timeout",
        "negative-timeout",
};

/* The value of option --@name in @cmdline ("--name=V" or "--name V"), or
 * NULL when it is not given. */
static char *gluster_option(const char *cmdline, const char *name)
{
        g_autofree char *flag = g_strconcat("--", name, NULL);
        g_auto(GStrv) words = g_strsplit_set(cmdline, " \t\n\"", -1);
        char *value = NULL;
        for (int i = 0; words[i]; i++) {
                const char *rest = g_str_has_prefix(words[i], flag) ? words[i] + strlen(flag)
                                                                    : NULL;
                if (!rest)
                        continue;
                g_free(value);
                if (*rest == '=')
                        value = g_strdup(rest + 1);
                else if (*rest == '\0')
                        value = g_strdup(words[i + 1] ? words[i + 1] : "");
                else
                        value = NULL; /* another option with this prefix */
        }
        return value;
}

static bool gluster_value_is_zero(const char *value)
{
        char *end = NULL;
        double seconds = g_ascii_strtod(value, &end);
        return end != value && *end == '\0' && seconds == 0;
}

static bool gluster_value_is_off(const char *value)
{
        return g_ascii_strcasecmp(value, "no") == 0 || g_ascii_strcasecmp(value, "off") == 0 ||
               g_ascii_strcasecmp(value, "false") == 0 || g_str_equal(value, "0");
}

/* The volume option that loads translator type @type, or NULL for one
 * that keeps no copy of what the servers hold (io-threads: a thread pool). */
static char *gluster_volume_option(const char *type)
{
        const char *name = g_str_has_prefix(type, "performance/") ? type + strlen("performance/")
                                                                  : NULL;
        if (!name || g_str_equal(name, "io-threads"))
                return NULL;
        /* md-cache is loaded by the option named after its first use. */
        if (g_str_equal(name, "md-cache"))
                return g_strdup("performance.stat-prefetch");
        return g_strconcat("performance.", name, NULL);
}

char *coherence_gluster_problems(const char *cmdline, const char *const *types)
{
        g_autoptr(GString) mount_options = g_string_new(NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(gluster_zero_timeouts); i++) {
                g_autofree char *value = gluster_option(cmdline, gluster_zero_timeouts[i]);
                if (value && gluster_value_is_zero(value))
                        continue;
                g_string_append_printf(mount_options, "%s%s=0", mount_options->len ? "," : "",
                                       gluster_zero_timeouts[i]);
        }
        /* Page cache kept across opens, writes held in the kernel. */
        static const char *const off_switches[] = { "fopen-keep-cache", "kernel-writeback-cache" };
        for (gsize i = 0; i < G_N_ELEMENTS(off_switches); i++) {
                g_autofree char *value = gluster_option(cmdline, off_switches[i]);
                if (value && !gluster_value_is_off(value))
                        g_string_append_printf(mount_options, "%s%s=no",
                                               mount_options->len ? "," : "", off_switches[i]);
        }

        g_autoptr(GPtrArray) volume_options = g_ptr_array_new_with_free_func(g_free);
        for (gsize i = 0; types && types[i]; i++) {
                char *option = gluster_volume_option(types[i]);
                if (option &&
                    !g_ptr_array_find_with_equal_func(volume_options, option, g_str_equal, NULL))
                        g_ptr_array_add(volume_options, option);
                else
                        g_free(option);
        }
        if (mount_options->len == 0 && volume_options->len == 0)
                return NULL;

        g_autoptr(GString) problems = g_string_new(NULL);
        if (mount_options->len)
                g_string_append_printf(problems, "mount the client with -o %s", mount_options->str);
        if (volume_options->len) {
                g_ptr_array_add(volume_options, NULL);
                g_autofree char *list = g_strjoinv(" ", (char **)volume_options->pdata);
                g_string_append_printf(problems,
                                       "%sturn off on the volume (gluster volume set VOLUME "
                                       "OPTION off): %s",
                                       mount_options->len ? "; " : "", list);
        }
        return g_string_free(g_steal_pointer(&problems), FALSE);
}

/* Reads the small file @relpath below the directory @dir_fd, never
 * following a symlink; NULL and -errno in @error. */
static char *coherence_read(int dir_fd, const char *relpath, int *error)
{
        Backing below = { .root_fd = dir_fd };
        autoclose_fd int fd = backing_openat(&below, relpath, O_RDONLY, 0);
        if (fd < 0) {
                *error = fd;
                return NULL;
        }
        g_autoptr(GString) text = g_string_new(NULL);
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0 && text->len < META_FILE_MAX)
                g_string_append_len(text, buf, n);
        if (n < 0) {
                *error = -errno;
                return NULL;
        }
        return g_string_free(g_steal_pointer(&text), FALSE);
}

/* The translator types of the client's active graph, NULL-ended; NULL
 * and -errno in @error. */
static GStrv coherence_gluster_types(int volume_fd, int *error)
{
        Backing volume = { .root_fd = volume_fd };
        autoclose_fd int graphs = backing_open_dir(&volume, ".meta/graphs");
        if (graphs < 0) {
                *error = graphs;
                return NULL;
        }
        /* "active" links to the graph in use: one name in this folder. */
        char active[NAME_MAX + 1];
        ssize_t len = readlinkat(graphs, "active", active, sizeof(active) - 1);
        if (len < 0) {
                *error = -errno;
                return NULL;
        }
        active[len] = '\0';
        if (strchr(active, '/') || g_str_equal(active, ".") || g_str_equal(active, "..")) {
                *error = -EINVAL;
                return NULL;
        }
        Backing below = { .root_fd = graphs };
        int graph = backing_openat(&below, active, O_RDONLY | O_DIRECTORY, 0);
        DIR *dir = graph >= 0 ? fdopendir(graph) : NULL;
        if (!dir) {
                *error = graph < 0 ? graph : -errno;
                if (graph >= 0)
                        close(graph);
                return NULL;
        }
        g_autoptr(GPtrArray) types = g_ptr_array_new_with_free_func(g_free);
        struct dirent *entry;
        while ((entry = readdir(dir)) && types->len < GRAPH_TRANSLATORS_MAX) {
                if (entry->d_name[0] == '.')
                        continue;
                g_autofree char *type_path = g_strconcat(entry->d_name, "/type", NULL);
                int ignored = 0;
                g_autofree char *type = coherence_read(dirfd(dir), type_path, &ignored);
                if (type)
                        g_ptr_array_add(types, g_strdup(g_strstrip(type)));
        }
        closedir(dir);
        g_ptr_array_add(types, NULL);
        return (GStrv)g_ptr_array_free(g_steal_pointer(&types), FALSE);
}

/* The mount that shows the whole filesystem @under is on (its root "/"),
 * preferring @under itself; NULL if none does. */
static const PoMount *coherence_volume_root(const GPtrArray *mounts, const PoMount *under)
{
        if (g_str_equal(under->root, "/"))
                return under;
        for (guint i = 0; i < mounts->len; i++) {
                const PoMount *mount = mounts->pdata[i];
                if (mount->dev == under->dev && g_str_equal(mount->root, "/"))
                        return mount;
        }
        return NULL;
}

static char *coherence_check_gluster(const GPtrArray *mounts, const PoMount *under)
{
        const PoMount *root = coherence_volume_root(mounts, under);
        if (!root)
                return g_strdup_printf("it is on a GlusterFS client mount (%s) of part of a "
                                       "volume; "
                                       "mailbagfs reads the client's settings from the .meta "
                                       "folder at the volume's root: mount the whole volume",
                                       under->mount_point);
        /* The mount point's name could lead elsewhere by now: the
         * descriptor must be that mount's root, not a folder in it where a
         * user could have made a .meta of their own. */
        autoclose_fd int volume = open(root->mount_point,
                                       O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct statx stx;
        if (volume < 0 || statx(volume, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 ||
            !(stx.stx_mask & STATX_MNT_ID) || stx.stx_mnt_id != (guint64)root->id ||
            !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
                return g_strdup_printf("it is on a GlusterFS client mount, whose settings cannot "
                                       "be read at %s: %s",
                                       root->mount_point,
                                       volume < 0 ? g_strerror(errno)
                                                  : "another mount is there now");
        int error = 0;
        g_autofree char *cmdline = coherence_read(volume, ".meta/cmdline", &error);
        g_auto(GStrv) types = cmdline ? coherence_gluster_types(volume, &error) : NULL;
        if (!types)
                return g_strdup_printf("it is on a GlusterFS client mount (%s) whose settings "
                                       "cannot be read from its .meta folder: %s",
                                       root->mount_point, g_strerror(-error));
        g_autofree char *problems = coherence_gluster_problems(cmdline, (const char *const *)types);
        if (!problems)
                return NULL;
        return g_strdup_printf("it is on a GlusterFS client mount (%s) whose caches can show one "
                               "node an old size or copy of a file another node changed, which "
                               "loses mail: %s (docs/cluster.md)",
                               root->mount_point, problems);
}

char *coherence_check(int backing_fd)
{
        struct statx stx;
        if (statx(backing_fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 ||
            !(stx.stx_mask & STATX_MNT_ID))
                return NULL; /* a kernel before 5.8: nothing to judge by */
        g_autofree char *text = NULL;
        if (!g_file_get_contents("/proc/self/mountinfo", &text, NULL, NULL))
                return NULL;
        g_autoptr(GPtrArray) mounts = po_mounts_parse(text, NULL);
        const PoMount *under = mounts ? po_mounts_find_id(mounts, (int)stx.stx_mnt_id) : NULL;
        if (!under || !g_str_equal(under->fstype, GLUSTER_FSTYPE))
                return NULL;
        return coherence_check_gluster(mounts, under);
}
