; external.asm - External 3.x's session on the queue INQUEUE3: open or
; create P1\INQUEUE3.0LK read/write DENY_ALL (INT 21h AX=6C00h, BX=0012h,
; DX=0011h), hold it, close it, delete it (KB Q119642, Q103960).
%include "doslib.inc"

lockname db 'P1\INQUEUE3.0LK', 0
s_open  db 'open-0lk', 0
s_close db 'close-0lk', 0
s_del   db 'delete-0lk', 0
handle  dw 0

main:
        call    parse_args
        call    open_output
.session:
        mov     ax, 6C00h
        mov     bx, 0012h
        xor     cx, cx
        mov     dx, 0011h
        mov     si, lockname
        int     21h
        step    s_open
        jc      .next
        mov     [handle], bx
        hold_session 'E'
        close_handle s_close
        mov     ah, 41h
        mov     dx, lockname
        int     21h
        step    s_del
        next_session
