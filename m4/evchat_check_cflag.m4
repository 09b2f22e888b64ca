# EVCHAT_CHECK_CFLAG(FLAG, [ACTION-IF-ACCEPTED], [ACTION-IF-REJECTED])
# ---------------------------------------------------------------------
# Runs the actions depending on whether the C compiler accepts FLAG.
# -Werror is added for the probe because GCC only warns about some
# unknown -W flags, which would otherwise look accepted.
AC_DEFUN([EVCHAT_CHECK_CFLAG], [
	AS_VAR_PUSHDEF([evchat_cv], [evchat_cv_cflag_$1])
	AC_CACHE_CHECK([whether $CC accepts $1], [evchat_cv], [
		evchat_save_CFLAGS=$CFLAGS
		CFLAGS="$CFLAGS -Werror $1"
		AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
			[AS_VAR_SET([evchat_cv], [yes])],
			[AS_VAR_SET([evchat_cv], [no])])
		CFLAGS=$evchat_save_CFLAGS])
	AS_VAR_IF([evchat_cv], [yes], [$2], [$3])
	AS_VAR_POPDEF([evchat_cv])
])
