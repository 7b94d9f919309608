/* fs-script.c - the differential script. Each step appends one line
 * "what = result [errno name] [details]" to the transcript. Nothing that
 * legitimately differs between two directories (inode numbers, device,
 * ctime, creation times) is written; times are written only after the
 * script has set them. */
#include "fs-script.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

typedef struct {
        const char *root;
        GString *out;
        GPtrArray *paths; /* strings handed out by path(), freed at the end */
} Script;

static const char *path(Script *s, const char *rel)
{
        char *p = g_build_filename(s->root, rel, NULL);
        g_ptr_array_add(s->paths, p);
        return p;
}

/* Records a call's result; errno is read only when the call failed. */
static long note(Script *s, const char *what, long result)
{
        int saved = errno;
        if (result < 0)
                g_string_append_printf(s->out, "%s = %ld %s\n", what, result,
                                       strerrorname_np(saved));
        else
                g_string_append_printf(s->out, "%s = %ld\n", what, result);
        errno = saved;
        return result;
}

static void note_stat(Script *s, const char *rel, bool with_times)
{
        struct stat st;
        g_autofree char *what = g_strdup_printf("lstat %s", rel);
        if (note(s, what, lstat(path(s, rel), &st)) < 0)
                return;
        g_string_append_printf(s->out, "  mode=%o nlink=%lu size=%lld blocks=%lld uid=%u gid=%u\n",
                               st.st_mode, (unsigned long)st.st_nlink, (long long)st.st_size,
                               (long long)st.st_blocks, st.st_uid, st.st_gid);
        if (with_times)
                g_string_append_printf(s->out, "  atime=%lld.%09ld mtime=%lld.%09ld\n",
                                       (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
                                       (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void note_file(Script *s, const char *rel)
{
        g_autofree char *data = NULL;
        gsize len = 0;
        g_autoptr(GError) error = NULL;
        if (!g_file_get_contents(path(s, rel), &data, &len, &error)) {
                g_string_append_printf(s->out, "read %s: failed\n", rel);
                return;
        }
        g_autofree char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
        g_string_append_printf(s->out, "read %s: %zu bytes sha256 %s\n", rel, len, sum);
}

static int compare_strings(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void note_dir(Script *s, const char *rel)
{
        DIR *dir = opendir(path(s, rel));
        if (!dir) {
                note(s, "opendir", -1);
                return;
        }
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        struct dirent *entry;
        while ((entry = readdir(dir)))
                g_ptr_array_add(names, g_strdup_printf("%s:%d", entry->d_name, entry->d_type));
        closedir(dir);
        qsort(names->pdata, names->len, sizeof(char *), compare_strings);
        g_string_append_printf(s->out, "dir %s:", rel);
        for (guint i = 0; i < names->len; i++)
                g_string_append_printf(s->out, " %s", (char *)names->pdata[i]);
        g_string_append_c(s->out, '\n');
}

static int write_file(Script *s, const char *rel, const char *text, int flags)
{
        int fd = open(path(s, rel), O_WRONLY | O_CREAT | flags, 0644);
        if (fd < 0)
                return -1;
        ssize_t n = write(fd, text, strlen(text));
        int closed = close(fd);
        return n < 0 || closed < 0 ? -1 : (int)n;
}

static void step_create_and_append(Script *s)
{
        note(s, "mkdir d", mkdir(path(s, "d"), 0755));
        note(s, "mkdir d again", mkdir(path(s, "d"), 0755));
        note(s, "mkdir d/sub", mkdir(path(s, "d/sub"), 0700));
        note(s, "create f excl", write_file(s, "f", "hello", O_EXCL));
        note(s, "create f excl again", open(path(s, "f"), O_WRONLY | O_CREAT | O_EXCL, 0600));
        note_stat(s, "f", false);

        int fd = open(path(s, "f"), O_WRONLY | O_APPEND);
        note(s, "open f append", fd >= 0 ? 0 : -1);
        note(s, "append write", write(fd, " world", 6));
        /* On Linux pwrite() to an O_APPEND file appends anyway. */
        note(s, "append pwrite at 0", pwrite(fd, "X", 1, 0));
        note(s, "close f", close(fd));
        note_file(s, "f");

        note(s, "open f trunc", write_file(s, "f", "abc", O_TRUNC));
        note_file(s, "f");
        note(s, "open missing", open(path(s, "missing"), O_RDONLY));
        note(s, "open f/x", open(path(s, "f/x"), O_RDONLY));
        note(s, "stat f/x", stat(path(s, "f/x"), &(struct stat){0}));
        note(s, "open d for write", open(path(s, "d"), O_WRONLY));
        char long_name[301];
        memset(long_name, 'N', 300);
        long_name[300] = '\0';
        note(s, "open long name", open(path(s, long_name), O_RDONLY | O_CREAT, 0644));
}

static void step_large_and_sparse(Script *s)
{
        /* 8 MiB in odd-sized writes, so requests straddle FUSE's buffers. */
        int fd = open(path(s, "big"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        note(s, "create big", fd >= 0 ? 0 : -1);
        g_autofree unsigned char *chunk = g_malloc(65537);
        long total = 0;
        for (int i = 0; total < 8L << 20; i++) {
                for (size_t j = 0; j < 65537; j++)
                        chunk[j] = (unsigned char)(i * 31 + j * 7);
                ssize_t n = write(fd, chunk, 65537);
                if (n != 65537) {
                        note(s, "write big chunk", n);
                        break;
                }
                total += n;
        }
        note(s, "fsync big", fsync(fd));
        note(s, "fdatasync big", fdatasync(fd));
        unsigned char probe[16];
        note(s, "pread big at 5000000", pread(fd, probe, sizeof(probe), 5000000));
        g_string_append_printf(s->out, "  %02x%02x%02x%02x\n", probe[0], probe[1], probe[2], probe[15]);
        note(s, "close big", close(fd));
        note_file(s, "big");
        note_stat(s, "big", false);

        fd = open(path(s, "sparse"), O_RDWR | O_CREAT, 0644);
        const off_t far = 3LL << 30;
        note(s, "pwrite sparse at 3 GiB", pwrite(fd, "end", 3, far));
        note(s, "seek data from 0", lseek(fd, 0, SEEK_DATA));
        note(s, "seek hole from 0", lseek(fd, 0, SEEK_HOLE));
        note(s, "seek data past end", lseek(fd, far + 10, SEEK_DATA));
        memset(probe, 0xff, sizeof(probe));
        note(s, "pread hole", pread(fd, probe, sizeof(probe), 1LL << 30));
        g_string_append_printf(s->out, "  %02x%02x\n", probe[0], probe[15]);
        note(s, "ftruncate sparse 10000", ftruncate(fd, 10000));
        note(s, "close sparse", close(fd));
        note_stat(s, "sparse", false);

        note(s, "truncate f 1", truncate(path(s, "f"), 1));
        note(s, "truncate f 5000", truncate(path(s, "f"), 5000));
        note_file(s, "f");
        note(s, "truncate missing", truncate(path(s, "missing"), 0));

        fd = open(path(s, "fa"), O_RDWR | O_CREAT, 0644);
        note(s, "fallocate 1 MiB", fallocate(fd, 0, 0, 1 << 20));
        note(s, "fallocate keep size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
        note(s, "fallocate punch", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 65536));
        note(s, "close fa", close(fd));
        note_stat(s, "fa", false);

        int in = open(path(s, "big"), O_RDONLY);
        int out = open(path(s, "copy"), O_WRONLY | O_CREAT, 0644);
        loff_t off_in = 1000, off_out = 0;
        note(s, "copy_file_range", copy_file_range(in, &off_in, out, &off_out, 100000, 0));
        close(in);
        close(out);
        note_file(s, "copy");
}

static void step_names(Script *s, const char *other_fs)
{
        note(s, "write a", write_file(s, "a", "AAAA", 0));
        note(s, "write c", write_file(s, "c", "CC", 0));
        note(s, "rename a b", rename(path(s, "a"), path(s, "b")));
        note(s, "rename a again", rename(path(s, "a"), path(s, "b")));
        note(s, "rename b c (replace)", rename(path(s, "b"), path(s, "c")));
        note_file(s, "c");
        note(s, "write b", write_file(s, "b", "BBB", 0));
        note(s, "rename noreplace", renameat2(AT_FDCWD, path(s, "b"), AT_FDCWD, path(s, "c"), RENAME_NOREPLACE));
        note(s, "rename exchange b d", renameat2(AT_FDCWD, path(s, "b"), AT_FDCWD, path(s, "d"), RENAME_EXCHANGE));
        note_stat(s, "b", false);
        note_stat(s, "d", false);
        note_file(s, "d");
        note(s, "rename exchange back", renameat2(AT_FDCWD, path(s, "b"), AT_FDCWD, path(s, "d"), RENAME_EXCHANGE));
        note_dir(s, "b");
        note(s, "mkdir e", mkdir(path(s, "e"), 0755));
        note(s, "write e/x", write_file(s, "e/x", "x", 0));
        note(s, "mkdir g", mkdir(path(s, "g"), 0755));
        note(s, "rename g onto non-empty e", rename(path(s, "g"), path(s, "e")));
        note(s, "rename e onto empty g", rename(path(s, "e"), path(s, "g")));
        note_file(s, "g/x");
        note(s, "rename file onto dir", rename(path(s, "c"), path(s, "g")));
        note(s, "rename dir onto file", rename(path(s, "g"), path(s, "c")));
        note(s, "rename dir into itself", rename(path(s, "g"), path(s, "g/inside")));

        note(s, "link c c2", link(path(s, "c"), path(s, "c2")));
        note_stat(s, "c", false);
        note(s, "link onto existing", link(path(s, "c"), path(s, "b")));
        note(s, "link a directory", link(path(s, "g"), path(s, "g2")));
        note(s, "unlink c", unlink(path(s, "c")));
        note_stat(s, "c2", false);
        note_file(s, "c2");

        note(s, "symlink", symlink("c2", path(s, "l")));
        note(s, "symlink dangling", symlink("nowhere/at/all", path(s, "dangling")));
        note(s, "symlink onto existing", symlink("c2", path(s, "b")));
        char target[256] = {0};
        note(s, "readlink l", readlink(path(s, "l"), target, sizeof(target) - 1));
        g_string_append_printf(s->out, "  -> %s\n", target);
        note(s, "readlink file", readlink(path(s, "c2"), target, sizeof(target)));
        note(s, "open dangling", open(path(s, "dangling"), O_RDONLY));
        note_file(s, "l");
        note_stat(s, "l", false);
        note(s, "link a symlink", link(path(s, "l"), path(s, "l2")));
        note_stat(s, "l2", false);

        note(s, "rmdir non-empty", rmdir(path(s, "g")));
        note(s, "rmdir file", rmdir(path(s, "c2")));
        note(s, "rmdir missing", rmdir(path(s, "nothing")));
        note(s, "unlink dir", unlink(path(s, "g")));
        note(s, "unlink missing", unlink(path(s, "nothing")));
        note(s, "unlink g/x", unlink(path(s, "g/x")));
        note(s, "rmdir g", rmdir(path(s, "g")));
        note(s, "mkfifo", mkfifo(path(s, "fifo"), 0600));
        note_stat(s, "fifo", false);

        if (other_fs) {
                g_autofree char *elsewhere = g_build_filename(other_fs, "moved", NULL);
                note(s, "rename across filesystems", rename(path(s, "c2"), elsewhere));
                note(s, "link across filesystems", link(path(s, "c2"), elsewhere));
                unlink(elsewhere);
        }
        note_dir(s, "");
}

static void step_metadata(Script *s)
{
        note(s, "chmod c2 0600", chmod(path(s, "c2"), 0600));
        note(s, "chmod d 02750", chmod(path(s, "d"), 02750));
        note(s, "chown c2", chown(path(s, "c2"), 1234, 5678));
        note(s, "lchown l", lchown(path(s, "l"), 4321, 8765));
        note(s, "chmod missing", chmod(path(s, "missing"), 0600));
        struct timespec times[2] = {{1234567890, 123456789}, {1500000000, 987654321}};
        note(s, "utimensat c2", utimensat(AT_FDCWD, path(s, "c2"), times, 0));
        note_stat(s, "c2", true);
        struct timespec omit[2] = {{0, UTIME_OMIT}, {1600000000, 5}};
        note(s, "utimensat omit atime", utimensat(AT_FDCWD, path(s, "c2"), omit, 0));
        note_stat(s, "c2", true);
        note(s, "utimensat symlink nofollow", utimensat(AT_FDCWD, path(s, "l"), times, AT_SYMLINK_NOFOLLOW));
        note_stat(s, "l", true);
        note_stat(s, "d", false);

        struct statvfs vfs;
        note(s, "statvfs", statvfs(path(s, ""), &vfs));
        g_string_append_printf(s->out, "  bsize=%lu namemax=%lu blocks=%llu\n", vfs.f_bsize,
                               vfs.f_namemax, (unsigned long long)vfs.f_blocks);

        const char *file = path(s, "c2");
        note(s, "setxattr", setxattr(file, "user.test", "v1", 2, 0));
        note(s, "setxattr create existing", setxattr(file, "user.test", "v2", 2, XATTR_CREATE));
        note(s, "setxattr replace missing", setxattr(file, "user.none", "v2", 2, XATTR_REPLACE));
        note(s, "setxattr second", setxattr(file, "user.other", "", 0, 0));
        char value[64] = {0};
        note(s, "getxattr size", getxattr(file, "user.test", NULL, 0));
        note(s, "getxattr", getxattr(file, "user.test", value, sizeof(value)));
        g_string_append_printf(s->out, "  value=%s\n", value);
        note(s, "getxattr too small", getxattr(file, "user.test", value, 1));
        note(s, "getxattr missing", getxattr(file, "user.none", value, sizeof(value)));
        char list[256] = {0};
        ssize_t len = listxattr(file, list, sizeof(list));
        note(s, "listxattr", len);
        for (ssize_t at = 0; at < len; at += (ssize_t)strlen(list + at) + 1)
                if (g_str_has_prefix(list + at, "user."))
                        g_string_append_printf(s->out, "  %s\n", list + at);
        note(s, "removexattr", removexattr(file, "user.test"));
        note(s, "removexattr missing", removexattr(file, "user.test"));
        note(s, "lsetxattr on symlink", lsetxattr(path(s, "l"), "user.x", "1", 1, 0));
        note(s, "setxattr on dir", setxattr(path(s, "d"), "user.dir", "1", 1, 0));
        note(s, "getxattr on dir", getxattr(path(s, "d"), "user.dir", value, sizeof(value)));
}

static void step_open_unlinked_and_listing(Script *s)
{
        int fd = open(path(s, "u"), O_RDWR | O_CREAT, 0644);
        note(s, "write u", write(fd, "before", 6));
        note(s, "unlink open u", unlink(path(s, "u")));
        struct stat st;
        note(s, "fstat unlinked", fstat(fd, &st));
        g_string_append_printf(s->out, "  nlink=%lu size=%lld\n", (unsigned long)st.st_nlink,
                               (long long)st.st_size);
        note(s, "write unlinked", write(fd, "+after", 6));
        char buf[32] = {0};
        note(s, "pread unlinked", pread(fd, buf, sizeof(buf) - 1, 0));
        g_string_append_printf(s->out, "  %s\n", buf);
        note(s, "ftruncate unlinked", ftruncate(fd, 2));
        note(s, "fchmod unlinked", fchmod(fd, 0600));
        note(s, "close unlinked", close(fd));

        /* Enough entries that a listing takes several getdents calls, and a
         * seekdir() back to a telldir() cookie must resume exactly. */
        note(s, "mkdir many", mkdir(path(s, "many"), 0755));
        for (int i = 0; i < 600; i++) {
                g_autofree char *rel = g_strdup_printf("many/FILE%04d.MAI", i);
                close(open(path(s, rel), O_WRONLY | O_CREAT, 0644));
        }
        DIR *dir = opendir(path(s, "many"));
        int first = 0, rest = 0, again = 0;
        long cookie = 0;
        for (struct dirent *e; first < 250 && (e = readdir(dir)); first++)
                ;
        cookie = telldir(dir);
        g_autoptr(GString) tail = g_string_new(NULL);
        for (struct dirent *e; (e = readdir(dir)); rest++)
                g_string_append(tail, e->d_name);
        seekdir(dir, cookie);
        g_autoptr(GString) tail_again = g_string_new(NULL);
        for (struct dirent *e; (e = readdir(dir)); again++)
                g_string_append(tail_again, e->d_name);
        closedir(dir);
        g_string_append_printf(s->out, "listing: %d + %d entries, resumed %d, same tail %s\n",
                               first, rest, again,
                               g_str_equal(tail->str, tail_again->str) ? "yes" : "no");
        note_dir(s, "d");
}

char *fs_script_run(const char *root, const char *other_fs)
{
        Script s = {
                .root = root,
                .out = g_string_new(NULL),
                .paths = g_ptr_array_new_with_free_func(g_free),
        };
        step_create_and_append(&s);
        step_large_and_sparse(&s);
        step_names(&s, other_fs);
        step_metadata(&s);
        step_open_unlinked_and_listing(&s);
        g_ptr_array_free(s.paths, TRUE);
        return g_string_free(s.out, FALSE);
}
