/* test-inode.c - the node table's bookkeeping: paths rebuilt from names,
 * hard links, renames and exchanges, unlinks, inode-number reuse, and
 * nodes freed once the kernel forgets them (memory follows what the
 * kernel holds, not what it has seen). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inode.h"

static InodeTable *table;

static struct stat fake_stat(ino_t ino, mode_t type)
{
        struct stat st = {.st_dev = 42, .st_ino = ino, .st_mode = type | 0644};
        return st;
}

static void setup(void)
{
        struct stat root = fake_stat(2, S_IFDIR);
        table = inode_table_new(&root);
}

static void teardown(void)
{
        inode_table_free(table);
}

TestSuite(inode, .init = setup, .fini = teardown);

static fuse_ino_t remember(fuse_ino_t parent, const char *name, ino_t ino, mode_t type)
{
        struct stat st = fake_stat(ino, type);
        return inode_table_remember(table, parent, name, &st, false);
}

static void expect_path(fuse_ino_t node, const char *want)
{
        int error = 0;
        g_autofree char *path = inode_table_path(table, node, &error);
        if (!want) {
                cr_expect_null(path, "node %lu still has path %s", (unsigned long)node, path);
                return;
        }
        cr_expect_not_null(path, "node %lu: %s", (unsigned long)node, g_strerror(-error));
        if (path)
                cr_expect_str_eq(path, want);
}

Test(inode, paths_from_names)
{
        fuse_ino_t key = remember(FUSE_ROOT_ID, "KEY", 10, S_IFDIR);
        fuse_ino_t file = remember(key, "INQUEUE3.KEY", 11, S_IFREG);
        expect_path(FUSE_ROOT_ID, "");
        expect_path(key, "KEY");
        expect_path(file, "KEY/INQUEUE3.KEY");
        int error = 0;
        g_autofree char *child = inode_table_child_path(table, key, "SYSTEM.KEY", &error);
        cr_expect_str_eq(child, "KEY/SYSTEM.KEY");
        g_autofree char *at_root = inode_table_child_path(table, FUSE_ROOT_ID, "GLB", &error);
        cr_expect_str_eq(at_root, "GLB");
        g_autofree char *deeper = inode_table_child_path(table, file, "X", &error);
        cr_expect_str_eq(deeper, "KEY/INQUEUE3.KEY/X");
        error = 0;
        cr_expect_null(inode_table_child_path(table, 999999, "X", &error));
        cr_expect_eq(error, -ESTALE);
        /* The same backing file looked up again is the same node. */
        cr_expect_eq(remember(key, "INQUEUE3.KEY", 11, S_IFREG), file);
        InodeKey k;
        cr_expect_eq(inode_table_key(table, 999999, &k), -ESTALE);
}

Test(inode, a_last_name_comes_with_the_nodes_key_and_its_folders)
{
        fuse_ino_t p1 = remember(FUSE_ROOT_ID, "P1", 10, S_IFDIR);
        fuse_ino_t q = remember(FUSE_ROOT_ID, "QUARANT", 11, S_IFDIR);
        fuse_ino_t file = remember(p1, "0000002A.P1", 20, S_IFREG);
        InodeKey key = {0}, folder = {0};
        g_autofree char *name = inode_table_last_name(table, file, &key, &folder);
        cr_assert_not_null(name);
        cr_expect_str_eq(name, "0000002A.P1");
        cr_expect_eq(key.nodeid, file);
        cr_expect_eq(key.backing.ino, 20);
        cr_expect_eq(key.type, S_IFREG);
        cr_expect_eq(folder.nodeid, p1);
        cr_expect_eq(folder.backing.ino, 10);

        /* After a rename, the new name and the new folder, together. */
        inode_table_renamed(table, p1, "0000002A.P1", q, "0000002B.P1", 0, NULL, NULL);
        g_autofree char *renamed = inode_table_last_name(table, file, &key, &folder);
        cr_assert_not_null(renamed);
        cr_expect_str_eq(renamed, "0000002B.P1");
        cr_expect_eq(key.nodeid, file);
        cr_expect_eq(folder.nodeid, q);
        cr_expect_eq(folder.backing.ino, 11);

        /* Either key may be left out; no name, no keys touched. */
        g_autofree char *plain = inode_table_last_name(table, file, NULL, NULL);
        cr_expect_str_eq(plain, "0000002B.P1");
        inode_table_unlinked(table, q, "0000002B.P1", NULL, NULL);
        InodeKey untouched = {.nodeid = 7};
        cr_expect_null(inode_table_last_name(table, file, &untouched, NULL));
        cr_expect_eq(untouched.nodeid, 7);
        cr_expect_null(inode_table_last_name(table, FUSE_ROOT_ID, &untouched, &untouched));
        cr_expect_null(inode_table_last_name(table, 999999, NULL, NULL));
}

Test(inode, hard_links_and_unlink)
{
        fuse_ino_t dir = remember(FUSE_ROOT_ID, "P1", 10, S_IFDIR);
        fuse_ino_t a = remember(dir, "A.P1", 20, S_IFREG);
        fuse_ino_t b = remember(dir, "B.P1", 20, S_IFREG);
        cr_expect_eq(a, b, "two names of one file are one node");
        expect_path(a, "P1/B.P1"); /* the most recent name */
        inode_table_unlinked(table, dir, "B.P1", NULL, NULL);
        expect_path(a, "P1/A.P1"); /* the other name still reaches it */
        inode_table_unlinked(table, dir, "A.P1", NULL, NULL);
        expect_path(a, NULL);

        /* A later file that reuses the inode number is a new node. */
        fuse_ino_t c = remember(dir, "C.P1", 20, S_IFREG);
        cr_expect_neq(c, a);
        /* So is one that reuses it with another type. */
        fuse_ino_t d = remember(dir, "D", 20, S_IFDIR);
        cr_expect_neq(d, c);
}

Test(inode, rename_and_exchange)
{
        fuse_ino_t p1 = remember(FUSE_ROOT_ID, "P1", 10, S_IFDIR);
        fuse_ino_t q = remember(FUSE_ROOT_ID, "QUARANT", 11, S_IFDIR);
        fuse_ino_t x = remember(p1, "X.P1", 20, S_IFREG);
        fuse_ino_t y = remember(p1, "Y.P1", 21, S_IFREG);

        inode_table_renamed(table, p1, "X.P1", q, "X.P1", 0, NULL, NULL);
        expect_path(x, "QUARANT/X.P1");
        /* Renaming over an existing name: the old file loses it. */
        inode_table_renamed(table, p1, "Y.P1", q, "X.P1", 0, NULL, NULL);
        expect_path(y, "QUARANT/X.P1");
        expect_path(x, NULL);

        fuse_ino_t z = remember(p1, "Z.P1", 22, S_IFREG);
        inode_table_renamed(table, q, "X.P1", p1, "Z.P1", RENAME_EXCHANGE, NULL, NULL);
        expect_path(y, "P1/Z.P1");
        expect_path(z, "QUARANT/X.P1");

        /* A directory renamed carries its children's paths with it. */
        inode_table_renamed(table, FUSE_ROOT_ID, "P1", FUSE_ROOT_ID, "P1.OLD", 0, NULL, NULL);
        expect_path(y, "P1.OLD/Z.P1");
}

Test(inode, forgotten_nodes_are_freed)
{
        guint before = inode_table_size(table);
        fuse_ino_t dir = remember(FUSE_ROOT_ID, "MAI", 10, S_IFDIR);
        fuse_ino_t sub = remember(dir, "MAE", 11, S_IFDIR);
        fuse_ino_t msg = remember(sub, "0009DF5E.MAI", 12, S_IFREG);
        cr_expect_eq(inode_table_size(table), before + 3);

        /* A directory the kernel forgot stays while a child is known. */
        inode_table_forget(table, dir, 1);
        inode_table_forget(table, sub, 1);
        expect_path(msg, "MAI/MAE/0009DF5E.MAI");
        cr_expect_eq(inode_table_size(table), before + 3);

        inode_table_forget(table, msg, 1);
        cr_expect_eq(inode_table_size(table), before, "nodes leaked");
        /* Forgetting an unknown node, or too much, is harmless. */
        inode_table_forget(table, msg, 5);
        inode_table_forget(table, 123456, 1);
        inode_table_forget(table, FUSE_ROOT_ID, 10);
        expect_path(FUSE_ROOT_ID, "");
}

Test(inode, open_descriptors_reach_unlinked_files)
{
        fuse_ino_t node = remember(FUSE_ROOT_ID, "U", 30, S_IFREG);
        cr_expect_eq(inode_table_dup_open_file(table, node), -ENOENT);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        InodeIo io = INODE_IO_CACHED;
        int backing_id = -1;
        cr_assert_eq(inode_table_file_opened(table, node, fds[0], &io, &backing_id, NULL, NULL), 0);
        int dup = inode_table_dup_open_file(table, node);
        cr_expect_geq(dup, 0);
        if (dup >= 0)
                close(dup);
        cr_expect_not(inode_table_file_closed(table, node, fds[0], io));
        cr_expect_eq(inode_table_dup_open_file(table, node), -ENOENT);
        close(fds[0]);
        close(fds[1]);
}

/* A stand-in for the kernel's backing registration: counts the calls and
 * answers the next id, or @refuse's error. */
typedef struct {
        int calls;
        int next_id;
        int refuse; /* -errno, or 0 */
} BackingRegistry;

static int backing_register(void *opaque, int fd)
{
        BackingRegistry *registry = opaque;
        registry->calls++;
        return registry->refuse ? registry->refuse : ++registry->next_id;
}

static InodeIo open_as(fuse_ino_t node, int fd, InodeIo want, BackingRegistry *registry,
                       int *backing_id, int expect_result)
{
        InodeIo io = want;
        cr_expect_eq(inode_table_file_opened(table, node, fd, &io, backing_id, backing_register,
                                             registry),
                     expect_result, "open of fd %d as %d", fd, want);
        return io;
}

Test(inode, a_nodes_handles_are_all_passed_through_or_none)
{
        fuse_ino_t node = remember(FUSE_ROOT_ID, "1.P1", 40, S_IFREG);
        BackingRegistry registry = {0};
        int id_a = 0, id_b = 0, id_c = 0, id_d = 0;

        /* The first handle asking for passthrough registers the node. */
        cr_expect_eq(open_as(node, 10, INODE_IO_PASSTHROUGH, &registry, &id_a, 0),
                     INODE_IO_PASSTHROUGH);
        cr_expect_eq(id_a, 1);
        /* Any later handle is passed through by the same id, whatever it
         * asked for, and nothing is registered again... */
        cr_expect_eq(open_as(node, 11, INODE_IO_CACHED, &registry, &id_b, 0), INODE_IO_PASSTHROUGH);
        cr_expect_eq(open_as(node, 12, INODE_IO_DIRECT, &registry, &id_c, 0), INODE_IO_PASSTHROUGH);
        cr_expect_eq(id_b, 1);
        cr_expect_eq(id_c, 1);
        cr_expect_eq(registry.calls, 1);
        /* ...but a handle whose I/O must reach the daemon is refused. */
        cr_expect_eq(open_as(node, 13, INODE_IO_DAEMON, &registry, &id_d, -EBUSY), INODE_IO_DAEMON);
        /* Only the last one closed gives the id back. */
        cr_expect_not(inode_table_file_closed(table, node, 10, INODE_IO_PASSTHROUGH));
        cr_expect_not(inode_table_file_closed(table, node, 12, INODE_IO_PASSTHROUGH));
        cr_expect(inode_table_file_closed(table, node, 11, INODE_IO_PASSTHROUGH));
        cr_expect_eq(inode_table_dup_open_file(table, node), -ENOENT, "descriptors left behind");

        /* Then a cached handle keeps passthrough away until it closes. */
        cr_expect_eq(open_as(node, 20, INODE_IO_CACHED, &registry, &id_a, 0), INODE_IO_CACHED);
        cr_expect_eq(open_as(node, 21, INODE_IO_PASSTHROUGH, &registry, &id_b, 0), INODE_IO_CACHED);
        cr_expect_eq(open_as(node, 22, INODE_IO_DAEMON, &registry, &id_c, 0), INODE_IO_DAEMON);
        cr_expect_eq(registry.calls, 1);
        cr_expect_not(inode_table_file_closed(table, node, 20, INODE_IO_CACHED));
        /* A direct handle is neither: passthrough may come again after the
         * cached ones went, with a new id. */
        cr_expect_eq(open_as(node, 23, INODE_IO_PASSTHROUGH, &registry, &id_d, 0), INODE_IO_CACHED);
        cr_expect_not(inode_table_file_closed(table, node, 21, INODE_IO_CACHED));
        cr_expect_not(inode_table_file_closed(table, node, 23, INODE_IO_CACHED));
        cr_expect_eq(open_as(node, 24, INODE_IO_PASSTHROUGH, &registry, &id_a, 0),
                     INODE_IO_PASSTHROUGH);
        cr_expect_eq(id_a, 2);
        cr_expect_eq(registry.calls, 2);
        cr_expect_not(inode_table_file_closed(table, node, 22, INODE_IO_DAEMON));
        cr_expect(inode_table_file_closed(table, node, 24, INODE_IO_PASSTHROUGH));

        /* A refused registration leaves the handle as it would have been
         * without passthrough, and the node free for the next try. */
        registry.refuse = -ELOOP;
        cr_expect_eq(open_as(node, 30, INODE_IO_PASSTHROUGH, &registry, &id_b, 0), INODE_IO_CACHED);
        cr_expect_eq(id_b, 0);
        cr_expect_not(inode_table_file_closed(table, node, 30, INODE_IO_CACHED));
        registry.refuse = 0;
        cr_expect_eq(open_as(node, 31, INODE_IO_PASSTHROUGH, &registry, &id_c, 0),
                     INODE_IO_PASSTHROUGH);
        cr_expect_eq(id_c, 3);
        cr_expect(inode_table_file_closed(table, node, 31, INODE_IO_PASSTHROUGH));
        inode_table_forget(table, node, 1);
}
