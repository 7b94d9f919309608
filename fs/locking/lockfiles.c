/* lockfiles.c - path <-> reference table of live Mail 2.x lock files. */
#include "lockfiles.h"

#include <errno.h>
#include <string.h>

struct LockFiles {
        GMutex mutex;
        GHashTable *by_path; /* char *path -> LockFile*, owns both; guarded by mutex */
        GHashTable *by_ref;  /* uint64_t *ref -> LockFile* (borrowed); guarded by mutex */
};

LockFiles *lockfiles_new(void)
{
        LockFiles *files = g_new0(LockFiles, 1);
        g_mutex_init(&files->mutex);
        files->by_path = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        files->by_ref = g_hash_table_new(g_int64_hash, g_int64_equal);
        return files;
}

void lockfiles_free(LockFiles *files)
{
        if (!files)
                return;
        g_hash_table_unref(files->by_ref);
        g_hash_table_unref(files->by_path);
        g_mutex_clear(&files->mutex);
        g_free(files);
}

static void lockfiles_remove_locked(LockFiles *files, LockFile *entry, LockFile *out)
{
        if (out)
                *out = *entry;
        g_hash_table_remove(files->by_ref, &entry->ref);
        g_hash_table_remove(files->by_path, entry->path);
}

int lockfiles_add(LockFiles *files, const char *path, const char *mailbag, uint64_t ref,
                  pid_t pid, uint64_t parent_node, const struct stat *st, LockFile *replaced,
                  LockFilePresentFn present, void *opaque)
{
        LockFile *entry = g_new0(LockFile, 1);
        g_strlcpy(entry->path, path, sizeof(entry->path));
        g_strlcpy(entry->mailbag, mailbag, sizeof(entry->mailbag));
        entry->ref = ref;
        entry->pid = pid;
        entry->parent_node = parent_node;
        entry->dev = st ? st->st_dev : 0;
        entry->ino = st ? st->st_ino : 0;

        g_mutex_lock(&files->mutex);
        if (present && !present(opaque)) {
                g_mutex_unlock(&files->mutex);
                g_free(entry);
                return -ENOENT;
        }
        LockFile *old = g_hash_table_lookup(files->by_path, entry->path);
        if (old)
                lockfiles_remove_locked(files, old, replaced);
        g_hash_table_insert(files->by_path, entry->path, entry);
        g_hash_table_insert(files->by_ref, &entry->ref, entry);
        g_mutex_unlock(&files->mutex);
        return old != NULL;
}

bool lockfiles_take_path(LockFiles *files, const char *path, LockFile *out)
{
        g_mutex_lock(&files->mutex);
        LockFile *entry = g_hash_table_lookup(files->by_path, path);
        if (entry)
                lockfiles_remove_locked(files, entry, out);
        g_mutex_unlock(&files->mutex);
        return entry != NULL;
}

bool lockfiles_take_ref(LockFiles *files, uint64_t ref, LockFile *out)
{
        g_mutex_lock(&files->mutex);
        LockFile *entry = g_hash_table_lookup(files->by_ref, &ref);
        if (entry)
                lockfiles_remove_locked(files, entry, out);
        g_mutex_unlock(&files->mutex);
        return entry != NULL;
}

bool lockfiles_held_by(LockFiles *files, const char *path, pid_t pid)
{
        g_mutex_lock(&files->mutex);
        LockFile *entry = g_hash_table_lookup(files->by_path, path);
        bool held = entry && entry->pid == pid;
        g_mutex_unlock(&files->mutex);
        return held;
}

bool lockfiles_known(LockFiles *files, const char *path)
{
        g_mutex_lock(&files->mutex);
        bool known = g_hash_table_contains(files->by_path, path);
        g_mutex_unlock(&files->mutex);
        return known;
}
