; v20.asm - the Mail 2.0 protocol (-V20): create the lock file
; P1\INQUEUE3.001 (INT 21h AH=3Ch), look for other lock files of the queue
; (AH=4Eh/4Fh on P1\INQUEUE3.0??), hold, delete the file (AH=41h).
%include "doslib.inc"

lockname db 'P1\INQUEUE3.001', 0
pattern db 'P1\INQUEUE3.0??', 0
s_create db 'create-0nn', 0
s_close db 'close-0nn', 0
s_detect db 'detect-others', 0
s_del   db 'delete-0nn', 0
dta     times 43 db 0

main:
        call    parse_args
        call    open_output
        mov     ah, 1Ah
        mov     dx, dta
        int     21h
.session:
        mov     ah, 3Ch
        xor     cx, cx
        mov     dx, lockname
        int     21h
        step    s_create
        jc      .next
        mov     ah, 3Eh
        int     21h
        step    s_close
        ; Every match but our own (.001) is another program's lock.
        xor     di, di
        mov     ah, 4Eh
        xor     cx, cx
        mov     dx, pattern
        int     21h
.match: jc      .counted
        cmp     word [dta + 1Eh + 9], '00'
        jne     .other
        cmp     byte [dta + 1Eh + 11], '1'
        je      .mine
.other: inc     di
.mine:  mov     ah, 4Fh
        int     21h
        jmp     .match
.counted:
        mov     ax, di
        mov     si, s_detect
        call    report
        hold_session 'V'
        mov     ah, 41h
        mov     dx, lockname
        int     21h
        step    s_del
        next_session
