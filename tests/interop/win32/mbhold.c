/* mbhold.c - a Win32 stand-in for a mail transfer program, driven line by
 * line on stdin so that a test can sequence two of them exactly.
 *
 * Commands (one per line; every command answers with exactly one line):
 *   open SLOT ACCESS SHARE DISPOSITION PATH
 *        CreateFile(PATH) into handle SLOT (0-7). ACCESS is r, w or rw;
 *        SHARE is "-" or letters of "rwd"; DISPOSITION is one of open,
 *        always, create, new, trunc (OPEN_EXISTING, OPEN_ALWAYS,
 *        CREATE_ALWAYS, CREATE_NEW, TRUNCATE_EXISTING).
 *   lock SLOT OFFSET LENGTH      LockFile
 *   unlock SLOT OFFSET LENGTH    UnlockFile
 *   close SLOT                   CloseHandle
 *   quit                         answers "BYE" and exits
 * Answers: "OK", or "ERROR n" with n = GetLastError() (32 is
 * ERROR_SHARING_VIOLATION, 33 ERROR_LOCK_VIOLATION), or "BAD what" for a
 * malformed command. The program says "READY" once it runs. End of input
 * closes every handle and exits, so a test that dies releases what its
 * programs held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#define SLOTS 8

static HANDLE slots[SLOTS];

static DWORD parse_access(const char *text)
{
        DWORD access = 0;
        if (strchr(text, 'r'))
                access |= GENERIC_READ;
        if (strchr(text, 'w'))
                access |= GENERIC_WRITE;
        return access;
}

static DWORD parse_share(const char *text)
{
        DWORD share = 0;
        if (strchr(text, 'r'))
                share |= FILE_SHARE_READ;
        if (strchr(text, 'w'))
                share |= FILE_SHARE_WRITE;
        if (strchr(text, 'd'))
                share |= FILE_SHARE_DELETE;
        return share;
}

static DWORD parse_disposition(const char *text)
{
        static const struct {
                const char *name;
                DWORD value;
        } table[] = {
                {"open", OPEN_EXISTING}, {"always", OPEN_ALWAYS}, {"create", CREATE_ALWAYS},
                {"new", CREATE_NEW},     {"trunc", TRUNCATE_EXISTING},
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (strcmp(text, table[i].name) == 0)
                        return table[i].value;
        return 0;
}

static void answer_result(BOOL ok)
{
        if (ok)
                printf("OK\n");
        else
                printf("ERROR %lu\n", (unsigned long)GetLastError());
}

static int parse_slot(const char *text)
{
        char *end;
        long slot = strtol(text ? text : "", &end, 10);
        if (!text || *end || slot < 0 || slot >= SLOTS)
                return -1;
        return (int)slot;
}

static void do_open(int slot, char *access, char *share, char *disposition, char *path)
{
        DWORD how = disposition ? parse_disposition(disposition) : 0;
        if (!access || !share || !how || !path) {
                printf("BAD open\n");
                return;
        }
        if (slots[slot] != INVALID_HANDLE_VALUE)
                CloseHandle(slots[slot]);
        slots[slot] = CreateFileA(path, parse_access(access), parse_share(share), NULL, how,
                                  FILE_ATTRIBUTE_NORMAL, NULL);
        answer_result(slots[slot] != INVALID_HANDLE_VALUE);
}

static void do_range(int slot, char *offset_text, char *length_text, BOOL lock)
{
        if (!offset_text || !length_text || slots[slot] == INVALID_HANDLE_VALUE) {
                printf("BAD range or handle\n");
                return;
        }
        unsigned long long offset = strtoull(offset_text, NULL, 10);
        unsigned long long length = strtoull(length_text, NULL, 10);
        DWORD off_low = (DWORD)offset, off_high = (DWORD)(offset >> 32);
        DWORD len_low = (DWORD)length, len_high = (DWORD)(length >> 32);
        if (lock)
                answer_result(LockFile(slots[slot], off_low, off_high, len_low, len_high));
        else
                answer_result(UnlockFile(slots[slot], off_low, off_high, len_low, len_high));
}

int main(void)
{
        /* The test reads each answer as soon as it is written. */
        setvbuf(stdout, NULL, _IONBF, 0);
        for (int i = 0; i < SLOTS; i++)
                slots[i] = INVALID_HANDLE_VALUE;

        printf("READY\n");
        char line[4096];
        while (fgets(line, sizeof(line), stdin)) {
                line[strcspn(line, "\r\n")] = '\0';
                char *saveptr = NULL;
                char *verb = strtok_r(line, " ", &saveptr);
                if (!verb)
                        continue;
                if (strcmp(verb, "quit") == 0) {
                        printf("BYE\n");
                        break;
                }
                int slot = parse_slot(strtok_r(NULL, " ", &saveptr));
                if (slot < 0) {
                        printf("BAD slot\n");
                        continue;
                }
                if (strcmp(verb, "open") == 0) {
                        char *access = strtok_r(NULL, " ", &saveptr);
                        char *share = strtok_r(NULL, " ", &saveptr);
                        char *disposition = strtok_r(NULL, " ", &saveptr);
                        /* The path is the rest of the line: it may hold spaces. */
                        char *path = strtok_r(NULL, "", &saveptr);
                        do_open(slot, access, share, disposition, path);
                } else if (strcmp(verb, "lock") == 0 || strcmp(verb, "unlock") == 0) {
                        char *offset = strtok_r(NULL, " ", &saveptr);
                        char *length = strtok_r(NULL, " ", &saveptr);
                        do_range(slot, offset, length, strcmp(verb, "lock") == 0);
                } else if (strcmp(verb, "close") == 0) {
                        if (slots[slot] == INVALID_HANDLE_VALUE) {
                                printf("BAD handle\n");
                                continue;
                        }
                        BOOL ok = CloseHandle(slots[slot]);
                        slots[slot] = INVALID_HANDLE_VALUE;
                        answer_result(ok);
                } else {
                        printf("BAD verb\n");
                }
        }
        for (int i = 0; i < SLOTS; i++)
                if (slots[i] != INVALID_HANDLE_VALUE)
                        CloseHandle(slots[i]);
        return 0;
}
