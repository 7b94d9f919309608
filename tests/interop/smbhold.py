#!/usr/bin/python3
# smbhold.py - one SMB client connection driven line by line on stdin, so a
# test can sequence two connections (two smbd processes) exactly.
#
# Usage: smbhold.py PORT SHARE [NT1]  (password in SMBHOLD_PASSWORD, user
# root; NT1: speak SMB1, otherwise the newest dialect both sides know)
# Commands, each answered with exactly one line:
#   open SLOT ACCESS SHARE DISPOSITION PATH   ACCESS r|w|rw, SHARE - or
#        letters of "rwd", DISPOSITION open|always|create|new|trunc
#   close SLOT
#   quit
# Answers: OK, ERROR NT_STATUS_NAME, or BAD what.
#
# impacket is used because it can reach a server on a port other than 445
# and sets any access mask and share mode; the shebang names Debian's
# interpreter, the one that sees Debian's python3-impacket.
import os
import sys

from impacket import nt_errors
from impacket.smb import SMB_DIALECT
from impacket.smbconnection import SMBConnection, SessionError

FILE_GENERIC_READ = 0x00120089
FILE_GENERIC_WRITE = 0x00120116
DISPOSITIONS = {"open": 1, "always": 3, "create": 5, "new": 2, "trunc": 4}


def status_name(code):
    name = nt_errors.ERROR_MESSAGES.get(code, ("0x%08x" % code,))[0]
    # impacket spells them STATUS_X; Samba and Windows tools NT_STATUS_X.
    return "NT_" + name if name.startswith("STATUS_") else name


def access_mask(text):
    mask = 0
    if "r" in text:
        mask |= FILE_GENERIC_READ
    if "w" in text:
        mask |= FILE_GENERIC_WRITE
    return mask


def share_mask(text):
    return (1 if "r" in text else 0) | (2 if "w" in text else 0) | (4 if "d" in text else 0)


def answer(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main():
    port, share = int(sys.argv[1]), sys.argv[2]
    dialect = SMB_DIALECT if sys.argv[3:] == ["NT1"] else None
    # smbd may keep an open pending for about 70 s (it retries opens that
    # met EAGAIN); the default 60 s timeout would cut that short.
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=port, timeout=150,
                         preferredDialect=dialect)
    conn.login("root", os.environ.get("SMBHOLD_PASSWORD", ""))
    tree = conn.connectTree(share)
    slots = {}
    answer("READY")
    for line in sys.stdin:
        words = line.split(None, 5)
        if not words:
            continue
        verb = words[0]
        try:
            if verb == "quit":
                answer("BYE")
                break
            if verb == "open" and len(words) == 6 and words[4] in DISPOSITIONS:
                slot = words[1]
                if slot in slots:
                    conn.closeFile(tree, slots.pop(slot))
                slots[slot] = conn.openFile(
                    tree, words[5].strip(),
                    desiredAccess=access_mask(words[2]),
                    shareMode=share_mask(words[3]),
                    creationOption=0x40,  # FILE_NON_DIRECTORY_FILE
                    creationDisposition=DISPOSITIONS[words[4]])
                answer("OK")
            elif verb == "close" and len(words) == 2 and words[1] in slots:
                conn.closeFile(tree, slots.pop(words[1]))
                answer("OK")
            else:
                answer("BAD " + verb)
        except SessionError as error:
            answer("ERROR " + status_name(error.getErrorCode()))
    for fid in slots.values():
        conn.closeFile(tree, fid)
    conn.logoff()


if __name__ == "__main__":
    main()
