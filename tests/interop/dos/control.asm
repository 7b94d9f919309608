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
        read_buf 8, s_read
        add     word [buf + 4], 1
        adc     word [buf + 6], 0
        rewrite_buf 8, s_seek, s_write
        hold_session 'C'
        close_handle s_close
        next_session
