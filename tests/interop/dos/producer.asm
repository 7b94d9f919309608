; producer.asm - a producer delivering into the mailbag INQUEUE3: open
; KEY\INQUEUE3.KEY read/write DENY_ALL (INT 21h AX=3D12h), read its
; counters, write them back, close.
%include "doslib.inc"

keyname db 'KEY\INQUEUE3.KEY', 0
s_open  db 'open-key-write', 0
s_read  db 'read-key', 0
s_seek  db 'seek-key', 0
s_write db 'write-key', 0
s_close db 'close-key', 0
handle  dw 0
buf     times 16 db 0

main:
        call    parse_args
        call    open_output
.session:
        mov     ax, 3D12h
        mov     dx, keyname
        int     21h
        step    s_open
        jc      .next
        mov     [handle], bx
        read_buf 16, s_read
        rewrite_buf 16, s_seek, s_write
        hold_session 'P'
        close_handle s_close
        next_session
