/* postoffices.c - which folders of the served tree are postoffices.
 *
 * Two maps, both guarded by the registry's mutex: by backing identity
 * (owning the Postoffice) and by path (borrowed, a cache that renames and
 * removals through the mount prune). A postoffice is set up (lease manager,
 * lock files already on the share) before it is published, outside the
 * mutex; when two requests recognise the same folder at once, the second
 * set-up is thrown away.
 */
#include "postoffices.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"

/* Folders seen to be half made, each noted once; bounded for a long life. */
#define POSTOFFICES_INCOMPLETE_NOTED_MAX 256
/* A start-up walk of a huge share must not delay the mount for long. */
#define POSTOFFICES_SCAN_FOLDERS_MAX 20000

typedef struct {
        Postoffice po;
        char *path; /* current path; guarded by Postoffices.mutex */
        gint64 retired_us; /* monotonic; 0 while in the maps; guarded by Postoffices.mutex */
} PostofficeSlot;

/* A retired postoffice is freed this long after its folder went, once
 * nothing of it is held: a request that looked it up just before (and
 * finds its manager stopped) has long finished by then. */
#define POSTOFFICES_RETIRED_GRACE_US (60 * G_USEC_PER_SEC)

struct Postoffices {
        PostofficesConfig config;
        /* Held across a recognition (probe, set-up, publication); taken
         * before mutex and before any lease manager's. */
        GMutex setup_mutex;
        GMutex mutex;
        GHashTable *by_identity;      /* "dev:ino" -> PostofficeSlot*, owned; guarded by mutex */
        GHashTable *by_path;          /* path -> PostofficeSlot* (borrowed); guarded by mutex */
        GHashTable *incomplete_noted; /* path -> itself; guarded by mutex */
        GHashTable *refused; /* path -> PostofficeRefusal*: set-up failed; guarded by mutex */
        /* Postoffices whose folder was removed: out of both maps, stopped
         * (off the watch thread, no descriptor), kept only because a request that
         * looked one up just before may still use it; freed after
         * POSTOFFICES_RETIRED_GRACE_US, or with the registry. Guarded by
         * mutex. */
        GPtrArray *retired;
        /* The one watch thread of every postoffice's lease manager; NULL if
         * it could not be started (each manager then tries its own). */
        LeaseWatcher *watcher;
};

/* A postoffice that could not be protected is asked about again only
 * after a while: its error is logged once per try, not once per open. */
#define POSTOFFICES_REFUSED_RETRY_US (10 * G_USEC_PER_SEC)

typedef struct {
        int error;
        gint64 retry_us; /* monotonic */
} PostofficeRefusal;

static void postoffice_slot_free(PostofficeSlot *slot)
{
        lease_manager_free(slot->po.leases);
        cluster_free(slot->po.cluster);
        lockfiles_free(slot->po.lockfiles);
        trail_free(slot->po.trail);
        g_free(slot->path);
        g_free(slot);
}

Postoffices *postoffices_new(const PostofficesConfig *config)
{
        Postoffices *registry = g_new0(Postoffices, 1);
        registry->config = *config;
        registry->config.only = g_strdupv(config->only);
        g_mutex_init(&registry->mutex);
        g_mutex_init(&registry->setup_mutex);
        registry->by_identity = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                      (GDestroyNotify)postoffice_slot_free);
        registry->by_path = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        registry->incomplete_noted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        registry->refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        registry->retired = g_ptr_array_new_with_free_func((GDestroyNotify)postoffice_slot_free);
        g_autoptr(GError) error = NULL;
        registry->watcher = lease_watcher_new(&error);
        if (!registry->watcher)
                log_error("%s; each postoffice will try a watch thread of its own", error->message);
        registry->config.lease_config.watcher = registry->watcher;
        return registry;
}

void postoffices_free(Postoffices *registry)
{
        if (!registry)
                return;
        /* Every lease manager first, while the maps and paths they log by
         * are whole: each fails its waiters on this thread, and the watch
         * thread may still call back for the others meanwhile. */
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, registry->by_identity);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_clear_pointer(&((PostofficeSlot *)value)->po.leases, lease_manager_free);
        /* Retired ones are stopped already: nothing of theirs calls back. */
        g_ptr_array_unref(registry->retired);
        lease_watcher_free(registry->watcher);
        g_hash_table_unref(registry->by_path);
        g_hash_table_unref(registry->by_identity);
        g_hash_table_unref(registry->incomplete_noted);
        g_hash_table_unref(registry->refused);
        g_strfreev(registry->config.only);
        g_mutex_clear(&registry->mutex);
        g_mutex_clear(&registry->setup_mutex);
        g_free(registry);
}

char *postoffices_canonical_path(const char *path)
{
        g_auto(GStrv) parts = g_strsplit(path ? path : "", "/", -1);
        g_autoptr(GPtrArray) kept = g_ptr_array_new();
        for (char **part = parts; *part; part++) {
                if (!**part || g_str_equal(*part, "."))
                        continue;
                if (g_str_equal(*part, ".."))
                        return NULL;
                g_ptr_array_add(kept, *part);
        }
        g_ptr_array_add(kept, NULL);
        return g_strjoinv("/", (char **)kept->pdata);
}

bool postoffices_split(const char *relpath, char **dir, const char **inner)
{
        const char *last = strrchr(relpath, '/');
        if (!last)
                return false;
        const char *folder = last;
        while (folder > relpath && folder[-1] != '/')
                folder--;
        *inner = folder;
        *dir = g_strndup(relpath, folder > relpath ? (gsize)(folder - relpath - 1) : 0);
        return true;
}

static bool postoffices_allowed(const Postoffices *registry, const char *path)
{
        return !registry->config.only ||
               g_strv_contains((const char *const *)registry->config.only, path);
}

static bool postoffices_has_folder(int dirfd, const char *name)
{
        struct stat st;
        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static void postoffices_note_incomplete(Postoffices *registry, const char *path, bool has_key)
{
        g_mutex_lock(&registry->mutex);
        bool first = !g_hash_table_contains(registry->incomplete_noted, path);
        if (first) {
                if (g_hash_table_size(registry->incomplete_noted) >= POSTOFFICES_INCOMPLETE_NOTED_MAX)
                        g_hash_table_remove_all(registry->incomplete_noted);
                g_hash_table_add(registry->incomplete_noted, g_strdup(path));
        }
        g_mutex_unlock(&registry->mutex);
        if (first)
                log_info("%s looks like a postoffice being made (no %s folder yet): its files are "
                         "not protected until it has both KEY and %s",
                         path[0] ? path : ".", has_key ? po_profile_lock_folder(registry->config.profile) : "KEY",
                         po_profile_lock_folder(registry->config.profile));
}

static PostofficeSlot *postoffices_lookup_path_locked(Postoffices *registry, const char *path)
{
        return g_hash_table_lookup(registry->by_path, path);
}

Postoffice *postoffices_peek(Postoffices *registry, const char *dir_relpath)
{
        g_mutex_lock(&registry->mutex);
        PostofficeSlot *slot = postoffices_lookup_path_locked(registry, dir_relpath);
        g_mutex_unlock(&registry->mutex);
        return slot ? &slot->po : NULL;
}

static void postoffices_log_protecting(const Postoffices *registry, const char *path)
{
        g_autofree char *queues =
                g_strjoinv(", ", (char **)po_profile_queues(registry->config.profile));
        log_info("protecting postoffice %s (queues %s)", path[0] ? path : ".", queues);
}

/* A -V20 lock file is the lock by its mere existence: one already on the
 * share when a postoffice is first seen (a daemon restart, a program that
 * worked on the backing store) holds its queue's session for a holder
 * nobody knows, until it is unlinked or root breaks it. A leftover .0LK is
 * no hold: its lock was an open that ended with its process. Runs before
 * any request can see @po. */
static void postoffices_claim_found_lockfiles(Postoffices *registry, Postoffice *po,
                                              int po_dirfd, const char *path)
{
        const PoProfile *profile = registry->config.profile;
        const char *lock_folder = po_profile_lock_folder(profile);
        DIR *dir = backing_fdopendir(
                openat(po_dirfd, lock_folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir)
                return;
        for (struct dirent *entry; (entry = readdir(dir));) {
                if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN)
                        continue;
                g_autofree char *inner = g_strdup_printf("%s/%s", lock_folder, entry->d_name);
                PoClass cls;
                po_classify(profile, inner, &cls);
                if (cls.role != PO_ROLE_SESSION_LOCK || !cls.is_queue ||
                    cls.lock_protocol != PO_LOCK_PROTOCOL_V20_FILE)
                        continue;

                g_autofree char *relpath = path[0] ? g_strdup_printf("%s/%s", path, inner)
                                                   : g_strdup(inner);
                if (cluster_held_elsewhere(po->cluster, LEASE_SESSION, cls.name)) {
                        /* Its holder is alive, through another daemon. */
                        log_info("lock file %s belongs to a session held through another "
                                 "mailbagfs daemon", relpath);
                        continue;
                }
                /* Claimed here as held, not looked at as a dead node's. */
                cluster_mark(po->cluster, cls.name, false);
                uint64_t ref = atomic_fetch_add(registry->config.next_ref, 1);
                LeaseRequest request = {
                        .kind = LEASE_SESSION,
                        .name = cls.name,
                        .pid = registry->config.daemon_pid,
                        .program = "unknown",
                        .protocol = "V20-found",
                        .ref = ref,
                        .timeout_ms = 0,
                };
                int r = lease_acquire(po->leases, &request, NULL);
                if (r < 0) {
                        log_warning("lock file %s found on the share cannot be held: %s", relpath,
                                    g_strerror(-r));
                        continue;
                }
                LockFile replaced;
                struct stat st;
                bool known = fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0;
                cluster_mark(po->cluster, cls.name, true);
                lockfiles_add(po->lockfiles, inner, cls.name, ref, registry->config.daemon_pid, 0,
                              known ? &st : NULL, &replaced, NULL, NULL);
                log_warning("lock file %s was on the share at start: session %s counts as held "
                            "by an unknown holder until the file is removed or broken",
                            relpath, cls.name);
        }
        closedir(dir);
}

static PostofficeSlot *postoffices_slot_new(Postoffices *registry, const struct stat *st,
                                            const char *path, int dirfd, int *error)
{
        PostofficeSlot *slot = g_new0(PostofficeSlot, 1);
        slot->po.dev = st->st_dev;
        slot->po.ino = st->st_ino;
        slot->po.owner = registry->config.owner;
        slot->path = g_strdup(path);
        slot->po.lockfiles = lockfiles_new();

        g_autoptr(GError) lease_error = NULL;
        slot->po.cluster = cluster_open(dirfd, path, &lease_error);
        LeaseConfig lease_config = registry->config.lease_config;
        lease_config.cluster = slot->po.cluster;
        lease_config.user_data = &slot->po;
        if (slot->po.cluster)
                slot->po.leases = lease_manager_new(&lease_config, &lease_error);
        if (!slot->po.leases) {
                log_error("cannot protect postoffice %s: %s; its mailbag files are refused",
                          path[0] ? path : ".", lease_error->message);
                *error = slot->po.cluster ? -EMFILE : -EPROTO;
                postoffice_slot_free(slot);
                return NULL;
        }
        slot->po.trail = trail_open(dirfd, path[0] ? path : ".", &registry->config.trail);
        postoffices_claim_found_lockfiles(registry, &slot->po, dirfd, path);
        return slot;
}

static int postoffices_recognise(Postoffices *registry, const char *dir_relpath, Postoffice **po);

int postoffices_find(Postoffices *registry, const char *dir_relpath, Postoffice **po)
{
        Postoffice *known = postoffices_peek(registry, dir_relpath);
        if (known) {
                *po = known;
                return 0;
        }
        /* One recognition at a time: two set-ups of one folder would each
         * claim its lock files through their own lease file descriptor and
         * see the other's claim as another daemon's. */
        g_mutex_lock(&registry->setup_mutex);
        known = postoffices_peek(registry, dir_relpath);
        int r = known ? 0 : postoffices_recognise(registry, dir_relpath, &known);
        g_mutex_unlock(&registry->setup_mutex);
        if (r == 0)
                *po = known;
        return r;
}

static int postoffices_recognise(Postoffices *registry, const char *dir_relpath, Postoffice **po)
{
        if (!postoffices_allowed(registry, dir_relpath))
                return -ENOENT;
        g_mutex_lock(&registry->mutex);
        PostofficeRefusal *refusal = g_hash_table_lookup(registry->refused, dir_relpath);
        int refused = refusal && refusal->retry_us > g_get_monotonic_time() ? refusal->error : 0;
        g_mutex_unlock(&registry->mutex);
        if (refused)
                return refused;

        autoclose_fd int dirfd = backing_open_dir(registry->config.backing, dir_relpath);
        if (dirfd < 0)
                /* Only a folder that is not there is no postoffice; running
                 * out of descriptors must not serve mailbag files unguarded. */
                return dirfd == -ENOENT || dirfd == -ENOTDIR || dirfd == -ELOOP ? -ENOENT : dirfd;
        bool has_key = postoffices_has_folder(dirfd, "KEY");
        bool has_locks = postoffices_has_folder(dirfd, po_profile_lock_folder(registry->config.profile));
        if (!has_key || !has_locks) {
                if (has_key || has_locks)
                        postoffices_note_incomplete(registry, dir_relpath, has_key);
                return -ENOENT;
        }
        struct stat st;
        if (fstat(dirfd, &st) < 0)
                return -errno;
        g_autofree char *identity = g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev,
                                                    (uintmax_t)st.st_ino);

        /* Known by identity: renamed through the mount, or its path was
         * pruned. Take the new path. */
        g_mutex_lock(&registry->mutex);
        PostofficeSlot *slot = g_hash_table_lookup(registry->by_identity, identity);
        if (slot) {
                g_free(slot->path);
                slot->path = g_strdup(dir_relpath);
                g_hash_table_replace(registry->by_path, g_strdup(dir_relpath), slot);
        }
        g_mutex_unlock(&registry->mutex);
        if (slot) {
                *po = &slot->po;
                return 0;
        }

        int error = 0;
        g_mutex_lock(&registry->mutex);
        guint known = g_hash_table_size(registry->by_identity);
        g_mutex_unlock(&registry->mutex);
        PostofficeSlot *fresh = NULL;
        if (known >= registry->config.max_count) {
                /* Each costs a thread and descriptors: a user making
                 * postoffices without end must not exhaust the daemon. */
                log_error("cannot protect postoffice %s: %u postoffices are protected, the "
                          "most max_postoffices allows; its mailbag files are refused",
                          dir_relpath[0] ? dir_relpath : ".", known);
                error = -EMFILE;
        } else {
                fresh = postoffices_slot_new(registry, &st, dir_relpath, dirfd, &error);
        }
        if (!fresh) {
                PostofficeRefusal *note = g_new(PostofficeRefusal, 1);
                note->error = error;
                note->retry_us = g_get_monotonic_time() + POSTOFFICES_REFUSED_RETRY_US;
                g_mutex_lock(&registry->mutex);
                g_hash_table_replace(registry->refused, g_strdup(dir_relpath), note);
                g_mutex_unlock(&registry->mutex);
                return error;
        }

        g_mutex_lock(&registry->mutex);
        slot = g_hash_table_lookup(registry->by_identity, identity);
        bool won = slot == NULL;
        if (won) {
                slot = fresh;
                g_hash_table_insert(registry->by_identity, g_steal_pointer(&identity), slot);
                g_hash_table_replace(registry->by_path, g_strdup(dir_relpath), slot);
        }
        g_mutex_unlock(&registry->mutex);
        if (won)
                postoffices_log_protecting(registry, dir_relpath);
        else
                postoffice_slot_free(fresh);
        *po = &slot->po;
        return 0;
}

static bool postoffices_path_at_or_below(const char *path, const char *top)
{
        size_t len = strlen(top);
        if (len == 0)
                return true;
        return strncmp(path, top, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

void postoffices_path_removed(Postoffices *registry, const char *relpath)
{
        g_mutex_lock(&registry->mutex);
        GHashTableIter iter;
        gpointer key;
        g_hash_table_iter_init(&iter, registry->by_path);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                if (postoffices_path_at_or_below(key, relpath))
                        g_hash_table_iter_remove(&iter);
        g_mutex_unlock(&registry->mutex);
}

/* Frees the retired postoffices past their grace that hold nothing. */
static void postoffices_free_retired(Postoffices *registry)
{
        g_autoptr(GPtrArray) done = g_ptr_array_new_with_free_func(
                (GDestroyNotify)postoffice_slot_free);
        gint64 now = g_get_monotonic_time();
        g_mutex_lock(&registry->mutex);
        for (guint i = 0; i < registry->retired->len;) {
                PostofficeSlot *slot = registry->retired->pdata[i];
                if (now - slot->retired_us < POSTOFFICES_RETIRED_GRACE_US) {
                        i++;
                        continue;
                }
                g_ptr_array_add(done, g_ptr_array_steal_index_fast(registry->retired, i));
        }
        g_mutex_unlock(&registry->mutex);
        for (guint i = 0; i < done->len;) {
                PostofficeSlot *slot = done->pdata[i];
                g_autoptr(GPtrArray) held = lease_manager_snapshot(slot->po.leases);
                if (held->len == 0) {
                        i++;
                        continue;
                }
                /* A handle still holds a lease of it: later. */
                g_mutex_lock(&registry->mutex);
                g_ptr_array_add(registry->retired, g_ptr_array_steal_index_fast(done, i));
                g_mutex_unlock(&registry->mutex);
        }
}

void postoffices_retire(Postoffices *registry, const char *dir_relpath)
{
        postoffices_free_retired(registry);
        g_mutex_lock(&registry->setup_mutex);
        g_mutex_lock(&registry->mutex);
        PostofficeSlot *slot = postoffices_lookup_path_locked(registry, dir_relpath);
        if (slot) {
                g_autofree char *identity = g_strdup_printf("%ju:%ju", (uintmax_t)slot->po.dev,
                                                            (uintmax_t)slot->po.ino);
                g_hash_table_steal(registry->by_identity, identity);
                GHashTableIter iter;
                gpointer value;
                g_hash_table_iter_init(&iter, registry->by_path);
                while (g_hash_table_iter_next(&iter, NULL, &value))
                        if (value == slot)
                                g_hash_table_iter_remove(&iter);
                slot->retired_us = g_get_monotonic_time();
                g_ptr_array_add(registry->retired, slot);
        }
        g_mutex_unlock(&registry->mutex);
        if (slot) {
                /* Outside the maps' mutex: the manager's last callbacks
                 * look its path up. */
                lease_manager_stop(slot->po.leases);
                cluster_close(slot->po.cluster);
                trail_close(slot->po.trail);
                log_info("postoffice %s was removed: no longer protected",
                         dir_relpath[0] ? dir_relpath : ".");
        }
        g_mutex_unlock(&registry->setup_mutex);
}

static bool postoffices_is_profile_folder(const PoProfile *profile, const char *name)
{
        for (const char *const *folder = po_profile_folders(profile); *folder; folder++)
                if (g_ascii_strcasecmp(*folder, name) == 0)
                        return true;
        return false;
}

typedef struct {
        Postoffices *registry;
        guint max_depth;
        guint visited;
} PostofficesScan;

static void postoffices_scan_folder(PostofficesScan *scan, const char *path, guint depth)
{
        if (scan->visited++ >= POSTOFFICES_SCAN_FOLDERS_MAX)
                return;
        Postoffice *po = NULL;
        bool is_po = postoffices_find(scan->registry, path, &po) == 0;
        if (depth >= scan->max_depth)
                return;

        DIR *dir = backing_fdopendir(
                backing_openat(scan->registry->config.backing, path, O_RDONLY | O_DIRECTORY, 0));
        if (!dir)
                return;
        g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func(g_free);
        for (struct dirent *entry; (entry = readdir(dir));) {
                if (entry->d_name[0] == '.' || entry->d_type != DT_DIR)
                        continue;
                /* A postoffice's own folders hold mail, not postoffices. */
                if (is_po && postoffices_is_profile_folder(scan->registry->config.profile,
                                                           entry->d_name))
                        continue;
                g_ptr_array_add(children, path[0] ? g_strdup_printf("%s/%s", path, entry->d_name)
                                                  : g_strdup(entry->d_name));
        }
        closedir(dir);
        for (guint i = 0; i < children->len; i++)
                postoffices_scan_folder(scan, children->pdata[i], depth + 1);
}

guint postoffices_scan(Postoffices *registry, guint max_depth)
{
        if (registry->config.only) {
                for (char **path = registry->config.only; *path; path++) {
                        Postoffice *po;
                        if (postoffices_find(registry, *path, &po) < 0)
                                log_warning("-o postoffice=%s: that folder is not a postoffice "
                                            "(yet): it needs KEY and %s folders",
                                            (*path)[0] ? *path : ".",
                                            po_profile_lock_folder(registry->config.profile));
                }
        } else {
                PostofficesScan scan = {.registry = registry, .max_depth = max_depth};
                postoffices_scan_folder(&scan, "", 0);
                if (scan.visited > POSTOFFICES_SCAN_FOLDERS_MAX)
                        log_info("stopped looking for postoffices after %u folders; others are "
                                 "found when first used", POSTOFFICES_SCAN_FOLDERS_MAX);
        }
        g_mutex_lock(&registry->mutex);
        guint n = g_hash_table_size(registry->by_identity);
        g_mutex_unlock(&registry->mutex);
        return n;
}

static gint postoffice_entry_compare(gconstpointer a, gconstpointer b)
{
        return strcmp(((const PostofficeEntry *)a)->path, ((const PostofficeEntry *)b)->path);
}

GArray *postoffices_list(Postoffices *registry)
{
        GArray *entries = g_array_new(FALSE, FALSE, sizeof(PostofficeEntry));
        g_mutex_lock(&registry->mutex);
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, registry->by_identity);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                PostofficeSlot *slot = value;
                PostofficeEntry entry = {.po = &slot->po, .path = g_strdup(slot->path)};
                g_array_append_val(entries, entry);
        }
        g_mutex_unlock(&registry->mutex);
        g_array_sort(entries, postoffice_entry_compare);
        return entries;
}

void postoffices_entries_free(GArray *entries)
{
        for (guint i = 0; i < entries->len; i++)
                g_free(g_array_index(entries, PostofficeEntry, i).path);
        g_array_free(entries, TRUE);
}

char *postoffices_path_of(Postoffices *registry, const Postoffice *po)
{
        /* A Postoffice is the first member of its slot. */
        const PostofficeSlot *slot = (const PostofficeSlot *)po;
        g_mutex_lock(&registry->mutex);
        char *path = g_strdup(slot->path);
        g_mutex_unlock(&registry->mutex);
        return path;
}
