; gateway.asm - a gateway's session on the queue INQUEUE3: open
; KEY\INQUEUE3.KEY read-only DENY_READ (INT 21h AX=3D30h) and read it,
; without looking at any lock file (KB Q103960).
%include "doslib.inc"

keyname db 'KEY\INQUEUE3.KEY', 0
s_open  db 'open-key-read', 0
s_read  db 'read-key', 0
s_close db 'close-key', 0
handle  dw 0
buf     times 16 db 0

main:
        call    parse_args
        call    open_output
.session:
        mov     ax, 3D30h
        mov     dx, keyname
        int     21h
        step    s_open
        jc      .next
        mov     [handle], bx
        read_buf 16, s_read
        hold_session 'G'
        close_handle s_close
        next_session
