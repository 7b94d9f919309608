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
        mov     ah, 3Fh
        mov     cx, 16
        mov     dx, buf
        int     21h
        step    s_read
        mov     ax, 4200h
        mov     bx, [handle]
        xor     cx, cx
        xor     dx, dx
        int     21h
        step    s_seek
        mov     ah, 40h
        mov     bx, [handle]
        mov     cx, 16
        mov     dx, buf
        int     21h
        step    s_write
        hold_session 'P'
        mov     bx, [handle]
        mov     ah, 3Eh
        int     21h
        step    s_close
.next:  mov     cx, 1
        call    wait_ticks
        dec     word [sessions]
        jnz     .session
        jmp     finish
