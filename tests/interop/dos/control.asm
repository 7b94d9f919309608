; control.asm - allocating a message number: open GLB\CONTROL.GLB
; read/write DENY_ALL (INT 21h AX=3D12h), read its 8 bytes, increment the
; next message number (u32 at 4), write them back, close (KB Q99204).
%include "doslib.inc"

glbname db 'GLB\CONTROL.GLB', 0
s_open  db 'open-control', 0
s_read  db 'read-control', 0
s_seek  db 'seek-control', 0
s_write db 'write-control', 0
s_close db 'close-control', 0
handle  dw 0
buf     times 8 db 0

main:
        call    parse_args
        call    open_output
.session:
        mov     ax, 3D12h
        mov     dx, glbname
        int     21h
        step    s_open
        jc      .next
        mov     [handle], bx
        mov     ah, 3Fh
        mov     cx, 8
        mov     dx, buf
        int     21h
        step    s_read
        add     word [buf + 4], 1
        adc     word [buf + 6], 0
        mov     ax, 4200h
        mov     bx, [handle]
        xor     cx, cx
        xor     dx, dx
        int     21h
        step    s_seek
        mov     ah, 40h
        mov     bx, [handle]
        mov     cx, 8
        mov     dx, buf
        int     21h
        step    s_write
        hold_session 'C'
        mov     bx, [handle]
        mov     ah, 3Eh
        int     21h
        step    s_close
.next:  mov     cx, 1
        call    wait_ticks
        dec     word [sessions]
        jnz     .session
        jmp     finish
