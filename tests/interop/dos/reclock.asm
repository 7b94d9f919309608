; reclock.asm - record locks as Mail programs take them on a mailbag
; file: open MBG\INQUEUE3.MBG read/write DENY_NONE (INT 21h AX=3D42h),
; lock bytes 0..15 (AX=5C00h), hold, unlock them (AX=5C01h), close.
%include "doslib.inc"

; Locks (%1 = 5C00h) or unlocks (5C01h) bytes 0..15 of the file; step %2.
%macro region 2
        mov     ax, %1
        mov     bx, [handle]
        xor     cx, cx
        xor     dx, dx
        xor     si, si
        mov     di, 16
        int     21h
        step    %2
%endmacro

mbgname db 'MBG\INQUEUE3.MBG', 0
s_open  db 'open-mbg', 0
s_lock  db 'lock-region', 0
s_unlock db 'unlock-region', 0
s_close db 'close-mbg', 0
handle  dw 0

main:
        call    parse_args
        call    open_output
.session:
        mov     ax, 3D42h
        mov     dx, mbgname
        int     21h
        step    s_open
        jc      .next
        mov     [handle], bx
        region  5C00h, s_lock
        hold_session 'R'
        region  5C01h, s_unlock
        close_handle s_close
        next_session
