/* bench-cycle - one timed "postoffice cycle" on a postoffice made by mkpo;
 * prints the elapsed seconds. Run by bench-cycle.sh on a raw directory and
 * through each filesystem under comparison, so that only the filesystem
 * differs.
 *
 *   bench-cycle POSTOFFICE N
 *
 * Producer, per message n (1..N): P1/NNNNNNNN.P1 (512 bytes) and
 * MAI/MAx/NNNNNNNN.MAI (4 KiB, x the last hex digit, where mkpo puts
 * them) are created, written and closed; then, with an fcntl write lock
 * on KEY/INQUEUE3.KEY held through a read/write descriptor opened for
 * this message alone, a 64-byte record naming n is appended to
 * MBG/INQUEUE3.MBG. Consumer, after all N: under the KEY lock once, every
 * record is read back, both files it names are read whole and removed,
 * and the MBG is truncated to empty, so the postoffice is as before and
 * the next run starts from the same state.
 *
 * The record is 64 bytes, not the 116 of a real mailbag record: what is
 * measured is the filesystem's handling of the calls, not Mail's format
 * (mailbagfs reads MBG contents only for its user.mailbag.records view,
 * which no step here asks for).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#define ENVELOPE_SIZE 512
#define MESSAGE_SIZE 4096
#define RECORD_SIZE 64

static const char *postoffice;

const char *const bench_program = "bench-cycle";


static void path_of(char *out, size_t size, const char *relative)
{
        if ((size_t)snprintf(out, size, "%s/%s", postoffice, relative) >= size) {
                fprintf(stderr, "bench-cycle: path too long: %s/%s\n", postoffice, relative);
                exit(2);
        }
}

static void envelope_path(char *out, size_t size, unsigned long n)
{
        char relative[64];
        snprintf(relative, sizeof(relative), "P1/%08lX.P1", n);
        path_of(out, size, relative);
}

static void message_path(char *out, size_t size, unsigned long n)
{
        char relative[64];
        snprintf(relative, sizeof(relative), "MAI/MA%lX/%08lX.MAI", n & 0xf, n);
        path_of(out, size, relative);
}

static void write_file(const char *path, const char *bytes, size_t size)
{
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0)
                bench_die("create", path);
        if (write(fd, bytes, size) != (ssize_t)size)
                bench_die("write", path);
        if (close(fd) < 0)
                bench_die("close", path);
}

static void read_file(const char *path, char *buffer, size_t expected)
{
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                bench_die("open", path);
        size_t total = 0;
        ssize_t got;
        /* Read to the end, as a consumer does, not just the known size. */
        while ((got = read(fd, buffer, MESSAGE_SIZE)) > 0)
                total += got;
        if (got < 0)
                bench_die("read", path);
        if (total != expected) {
                fprintf(stderr, "bench-cycle: %s: %zu bytes, expected %zu\n", path, total, expected);
                exit(1);
        }
        if (close(fd) < 0)
                bench_die("close", path);
}

/* The KEY opened read/write and write-locked whole, waiting if another
 * process holds it: how a producer claims the queue for its append. */
static int key_lock(const char *key)
{
        int fd = open(key, O_RDWR);
        if (fd < 0)
                bench_die("open", key);
        struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLKW, &lock) < 0)
                bench_die("lock", key);
        return fd;
}

static void key_unlock(int fd, const char *key)
{
        struct flock lock = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &lock) < 0)
                bench_die("unlock", key);
        if (close(fd) < 0)
                bench_die("close", key);
}

static void produce(unsigned long count, const char *key, const char *mbg)
{
        static char envelope[ENVELOPE_SIZE], message[MESSAGE_SIZE];
        char path[4096];
        memset(envelope, 'P', sizeof(envelope));
        memset(message, 'M', sizeof(message));
        for (unsigned long n = 1; n <= count; n++) {
                envelope_path(path, sizeof(path), n);
                write_file(path, envelope, sizeof(envelope));
                message_path(path, sizeof(path), n);
                write_file(path, message, sizeof(message));

                char record[RECORD_SIZE] = { 0 };
                snprintf(record, sizeof(record), "%08lX", n);
                int key_fd = key_lock(key);
                int mbg_fd = open(mbg, O_WRONLY | O_APPEND);
                if (mbg_fd < 0)
                        bench_die("open", mbg);
                if (write(mbg_fd, record, sizeof(record)) != (ssize_t)sizeof(record))
                        bench_die("append", mbg);
                if (close(mbg_fd) < 0)
                        bench_die("close", mbg);
                key_unlock(key_fd, key);
        }
}

static unsigned long consume(const char *key, const char *mbg)
{
        static char buffer[MESSAGE_SIZE];
        char path[4096];
        unsigned long consumed = 0;
        int key_fd = key_lock(key);
        int mbg_fd = open(mbg, O_RDWR);
        if (mbg_fd < 0)
                bench_die("open", mbg);
        char record[RECORD_SIZE];
        ssize_t got;
        while ((got = read(mbg_fd, record, sizeof(record))) == (ssize_t)sizeof(record)) {
                unsigned long n = strtoul(record, NULL, 16);
                envelope_path(path, sizeof(path), n);
                read_file(path, buffer, ENVELOPE_SIZE);
                if (unlink(path) < 0)
                        bench_die("unlink", path);
                message_path(path, sizeof(path), n);
                read_file(path, buffer, MESSAGE_SIZE);
                if (unlink(path) < 0)
                        bench_die("unlink", path);
                consumed++;
        }
        if (got != 0) {
                if (got > 0)
                        errno = EIO;
                bench_die("read", mbg);
        }
        if (ftruncate(mbg_fd, 0) < 0)
                bench_die("truncate", mbg);
        if (close(mbg_fd) < 0)
                bench_die("close", mbg);
        key_unlock(key_fd, key);
        return consumed;
}

int main(int argc, char *argv[])
{
        if (argc != 3) {
                fprintf(stderr, "usage: bench-cycle POSTOFFICE N\n");
                return 2;
        }
        postoffice = argv[1];
        unsigned long count = strtoul(argv[2], NULL, 10);
        char key[4096], mbg[4096];
        path_of(key, sizeof(key), "KEY/INQUEUE3.KEY");
        path_of(mbg, sizeof(mbg), "MBG/INQUEUE3.MBG");

        double start = bench_now();
        produce(count, key, mbg);
        unsigned long consumed = consume(key, mbg);
        double elapsed = bench_now() - start;
        if (consumed != count) {
                fprintf(stderr, "bench-cycle: consumed %lu records, produced %lu\n", consumed, count);
                return 1;
        }
        printf("%.3f\n", elapsed);
        return 0;
}
