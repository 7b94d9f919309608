# mailbagfs profile: Microsoft Mail 3.x for PC Networks postoffice.
#
# A profile tells mailbagfs which path of the postoffice is what. It is a
# glib key file: [group], key=value, lists separated by ';', '#' comments.
# Names match case-insensitively; the daemon and tools use them upper case.
# Every group and key below is required; an unknown group or key is an
# error (file, line, reason) so that a typo never silently weakens locking.
# A site copies this file, edits it and mounts with -o profile=PATH.
#
# D = documented in the cited Microsoft KB article, I = inferred.

[profile]
# Shown in logs and tool output.
name=Microsoft Mail 3.x

[layout]
# The 19 top-level folders of a postoffice (D, Q77926, Q135868).
folders=ATT;CAL;FOLDERS;GLB;GRP;HLP;INF;INI;KEY;LOG;MAI;MBG;MEM;MMF;NME;P1;TPL;USR;XTN
# Message bodies live in MAI/<prefix><last hex digit of the number>, e.g.
# 0009DF5E.MAI in MAI/MAE (D, Q87409, Q108027); attachments likewise in
# ATT/AT0..ATF (D, Q123248).
message-subfolders=MA
attachment-subfolders=AT
# Every folder and subfolder holds this read-only 1-byte file; missing
# folders cause "Disk storage full" errors (D, Q123248, Q135868).
marker=POPULATE.MSM

[queues]
# Mailbags that transfer programs process in sessions (D, Q77926, Q87416,
# Q119640): INQUEUE3 is the 3.x inbound queue, INQUEUE directory
# synchronisation, SYSTEM the system mailbag. A site appends the mailbag
# names of its gateways and external postoffices (their outbound queues).
names=INQUEUE3;INQUEUE;SYSTEM

[locks]
# Folder holding the lock files of every protocol (D, Q119642).
folder=P1
# Mail 3.0.4 and later: P1/<mailbag>.0LK created, opened DENY_ALL for the
# whole session, deleted at its end (D, Q119642). The KB spells it both with
# a zero (.0LK) and with the letter O (.OLK, Q103960): both are listed.
session-extensions=0LK;OLK
# Mail 2.x and -V20 (CompatV20): P1/<mailbag>.0NN, where N is a decimal
# digit and NN the -P0NN process number; External uses 01-70, PROFS
# defaults to 97 (D, Q119642, Q87189, Q131422). Any two digits match.
v20-extensions=0NN

[exclusive]
# Files only one process may have open at a time (D, Q134952, Q135926):
# CONTROL.GLB is read-incremented to allocate message names (Q99204,
# Q87388); FLAG.GLB held open means "administrator active" (Q131670).
files=GLB/CONTROL.GLB;GLB/TID.GLB;GLB/FLAG.GLB;GLB/MASTER.GLB
