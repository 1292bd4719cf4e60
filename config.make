# Appends to nginx's Makefile the rule that builds the Rust static library.
# cargo tracks the Rust sources itself, so the rule always runs and cargo
# decides whether anything needs rebuilding.

cat << END                                                    >> $NGX_MAKEFILE

$sticky_session_lib: .STICKY_SESSION_ALWAYS
	cd $ngx_addon_dir && \\
	NGINX_SOURCE_DIR="\$\$OLDPWD" NGINX_BUILD_DIR="\$\$OLDPWD/$NGX_OBJS" \\
	cargo rustc --release --lib --crate-type staticlib \\
		--no-default-features --features nginx \\
		--target-dir "\$\$OLDPWD/$NGX_OBJS/sticky_session"

.STICKY_SESSION_ALWAYS: ;

END

# The dynamic module has no C sources to hang the library on; a static build
# never asks for this target, so the rule is harmless there.
cat << END                                                    >> $NGX_MAKEFILE
$NGX_OBJS${ngx_dirsep}ngx_http_upstream_sticky_session_module$ngx_modext: $sticky_session_lib

END
