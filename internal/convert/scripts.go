package convert

// The files of /.singularity.d/ that Apptainer and SingularityCE write into
// every image they build (their "base environment"), with the same names,
// modes and behaviour. The runtimes of both projects source
// /.singularity.d/env/*.sh in order and run /.singularity.d/runscript for
// "run"; older runtimes also execute /.singularity.d/actions/*.

// sourceEnv is the prologue of every action script: load the environment
// scripts in lexical order, like the runtimes do.
const sourceEnv = `#!/bin/sh

for script in /.singularity.d/env/*.sh; do
    if [ -f "$script" ]; then
        . "$script"
    fi
done
`

const actionExec = sourceEnv + `
exec "$@"
`

const actionRun = sourceEnv + `
if test -n "${APPTAINER_APPNAME:-}"; then
    if test -x "/scif/apps/${APPTAINER_APPNAME:-}/scif/runscript"; then
        exec "/scif/apps/${APPTAINER_APPNAME:-}/scif/runscript" "$@"
    elif test -x "/scif/apps/singularity/scif/runscript"; then
        exec "/scif/apps/singularity/scif/runscript" "$@"
    fi
    echo "No Apptainer runscript for contained app: ${APPTAINER_APPNAME:-}"
    exit 1
elif test -x "/.singularity.d/runscript"; then
    exec "/.singularity.d/runscript" "$@"
fi
echo "No Apptainer runscript found, executing /bin/sh"
exec /bin/sh "$@"
`

const actionShell = sourceEnv + `
if test -n "${APPTAINER_SHELL:-}" -a -x "${APPTAINER_SHELL:-}"; then
    exec $APPTAINER_SHELL "$@"
    echo "ERROR: Failed running shell as defined by '\$APPTAINER_SHELL'" 1>&2
    exit 1
elif test -x /bin/bash; then
    SHELL=/bin/bash
    PS1="Apptainer ${APPTAINER_NAME:-}:\\w> "
    export SHELL PS1
    exec /bin/bash --norc "$@"
elif test -x /bin/sh; then
    SHELL=/bin/sh
    export SHELL
    exec /bin/sh "$@"
fi
echo "ERROR: /bin/sh does not exist in container" 1>&2
exit 1
`

const actionStart = `#!/bin/sh

# An instance starts here: let PID 1 go on. Keep this line.
kill -CONT 1

for script in /.singularity.d/env/*.sh; do
    if [ -f "$script" ]; then
        . "$script"
    fi
done

if test -x "/.singularity.d/startscript"; then
    exec "/.singularity.d/startscript"
fi
`

const actionTest = sourceEnv + `
if test -n "${APPTAINER_APPNAME:-}"; then
    if test -x "/scif/apps/${APPTAINER_APPNAME:-}/scif/test"; then
        exec "/scif/apps/${APPTAINER_APPNAME:-}/scif/test" "$@"
    elif test -x "/scif/apps/singularity/scif/test"; then
        exec "/scif/apps/singularity/scif/test" "$@"
    fi
    echo "No tests for contained app: ${APPTAINER_APPNAME:-}"
    exit 1
elif test -x "/.singularity.d/test"; then
    exec "/.singularity.d/test" "$@"
fi
echo "No test found in container, executing /bin/sh -c true"
exec /bin/sh -c true
`

const envBase = `#!/bin/sh
# Base environment of the container (sourced first).
`

const envEnvironment = `#!/bin/sh
# Custom environment shell code should follow

`

const envApps = `#!/bin/sh
# Environment of a SCIF app selected with --app.

if test -n "${APPTAINER_APPNAME:-}"; then
    export APPTAINER_APPNAME
    if test -d "/scif/apps/${APPTAINER_APPNAME:-}/"; then
        SCIF_APPS="/scif/apps"
        SCIF_APPROOT="/scif/apps/${APPTAINER_APPNAME:-}"
        export SCIF_APPROOT SCIF_APPS
        PATH="/scif/apps/${APPTAINER_APPNAME:-}:/scif/apps/singularity:$PATH"
        if test -d "/scif/apps/${APPTAINER_APPNAME:-}/bin"; then
            PATH="/scif/apps/${APPTAINER_APPNAME:-}/bin:$PATH"
        elif test -d "/scif/apps/singularity/bin"; then
            PATH="/scif/apps/singularity/bin:$PATH"
        fi
        if test -d "/scif/apps/${APPTAINER_APPNAME:-}/lib"; then
            LD_LIBRARY_PATH="/scif/apps/${APPTAINER_APPNAME:-}/lib:${LD_LIBRARY_PATH:-}"
            export LD_LIBRARY_PATH
        elif test -d "/scif/apps/singularity/lib"; then
            LD_LIBRARY_PATH="/scif/apps/singularity/lib:${LD_LIBRARY_PATH:-}"
            export LD_LIBRARY_PATH
        fi
        for f in 01-base.sh 90-environment.sh; do
            if [ -f "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/$f" ]; then
                . "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/$f"
            elif [ -f "/scif/apps/singularity/scif/env/$f" ]; then
                . "/scif/apps/singularity/scif/env/$f"
            fi
        done
        export PATH
    else
        echo "Could not locate the container application: ${APPTAINER_APPNAME}"
        exit 1
    fi
fi
`

const envBase99 = `#!/bin/sh
# Libraries the runtime binds in (GPU drivers with --nv) come last.

if [ -z "${LD_LIBRARY_PATH:-}" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi

PS1="Apptainer> "
export LD_LIBRARY_PATH PS1
`

const envRuntimeVars = `#!/bin/sh
# PATH as asked for on the command line (--env PATH=..., APPTAINERENV_PREPEND_PATH, ...).

if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"
fi

if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then
    PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"
fi

if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PATH}"
fi

unset SING_USER_DEFINED_PREPEND_PATH \
      SING_USER_DEFINED_APPEND_PATH \
      SING_USER_DEFINED_PATH

export PATH
`

const startScript = "#!/bin/sh\n"
