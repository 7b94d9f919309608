/* bench-workload - one timed file workload in a directory; prints the
 * elapsed seconds. Run by bench.sh on a raw directory and through each
 * filesystem under comparison, so that only the filesystem differs.
 *
 *   bench-workload DIR create|stat|read|unlink N
 *   bench-workload DIR seqwrite|seqread MIB
 *   bench-workload DIR session N      (open/close P1/INQUEUE3.0LK N times)
 *   bench-workload DIR walk           (stat every entry of the tree)
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

const char *const bench_program = "bench-workload";


static long walked;

static int walk_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        walked++;
        return 0;
}

int main(int argc, char *argv[])
{
        if (argc < 3) {
                fprintf(stderr, "usage: bench-workload DIR WORKLOAD [N]\n");
                return 2;
        }
        const char *dir = argv[1], *work = argv[2];
        long n = argc > 3 ? atol(argv[3]) : 0;
        char path[4096];
        static char block[1 << 20];
        memset(block, 'M', sizeof(block));

        double start = bench_now();
        if (strcmp(work, "create") == 0) {
                for (long i = 0; i < n; i++) {
                        snprintf(path, sizeof(path), "%s/F%07lX.MAI", dir, i);
                        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                        if (fd < 0 || write(fd, block, 4096) != 4096 || close(fd) < 0)
                                bench_die("create", path);
                }
        } else if (strcmp(work, "stat") == 0) {
                struct stat st;
                for (long i = 0; i < n; i++) {
                        snprintf(path, sizeof(path), "%s/F%07lX.MAI", dir, i);
                        if (stat(path, &st) < 0)
                                bench_die("stat", path);
                }
        } else if (strcmp(work, "read") == 0) {
                for (long i = 0; i < n; i++) {
                        snprintf(path, sizeof(path), "%s/F%07lX.MAI", dir, i);
                        int fd = open(path, O_RDONLY);
                        if (fd < 0 || read(fd, block, 4096) != 4096 || close(fd) < 0)
                                bench_die("read", path);
                }
        } else if (strcmp(work, "unlink") == 0) {
                for (long i = 0; i < n; i++) {
                        snprintf(path, sizeof(path), "%s/F%07lX.MAI", dir, i);
                        if (unlink(path) < 0)
                                bench_die("unlink", path);
                }
        } else if (strcmp(work, "seqwrite") == 0 || strcmp(work, "seqread") == 0) {
                bool writing = work[3] == 'w';
                snprintf(path, sizeof(path), "%s/BIG.DAT", dir);
                int fd = writing ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open(path, O_RDONLY);
                if (fd < 0)
                        bench_die("open", path);
                for (long i = 0; i < n; i++) {
                        ssize_t r = writing ? write(fd, block, sizeof(block)) : read(fd, block, sizeof(block));
                        if (r != (ssize_t)sizeof(block))
                                bench_die(writing ? "write" : "read", path);
                }
                if (writing && fsync(fd) < 0)
                        bench_die("fsync", path);
                close(fd);
        } else if (strcmp(work, "session") == 0) {
                snprintf(path, sizeof(path), "%s/P1/INQUEUE3.0LK", dir);
                for (long i = 0; i < n; i++) {
                        int fd = open(path, O_RDWR | O_CREAT, 0644);
                        if (fd < 0 || close(fd) < 0)
                                bench_die("session", path);
                }
        } else if (strcmp(work, "walk") == 0) {
                if (nftw(dir, walk_entry, 64, FTW_PHYS) < 0)
                        bench_die("walk", dir);
        } else {
                fprintf(stderr, "bench-workload: unknown workload %s\n", work);
                return 2;
        }
        printf("%.3f\n", bench_now() - start);
        return 0;
}
