"""Where the daemon refuses, on purpose, a job definition that Nosana's validator accepts.

Each is something Nosana's node accepts and then fails at run time (or does silently
otherwise than it says); the daemon refuses it up front with an error at `loc`. Every entry
names one case of the corpus; the conformance test fails when a listed case stops being a
difference, so this list says what is true today, never more.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deliberate:
    loc: str
    """Where the daemon's error must be."""
    reason: str


MISSING_VARIABLE = (
    "a %%global.variables.X%% literal naming no variable: Nosana's node fails the op when it "
    "starts ('Unresolved literal'); the daemon fills variables before it validates, and says so"
)
NOT_A_PORT = (
    "Nosana takes any number as a port; Docker cannot publish 0, a negative port, one above "
    "65535 or a fraction, so the op would fail when it starts"
)
VARIABLE_PORT = (
    "a variable fills a whole `expose` entry with something that is not a port: Nosana checks "
    "the literal unfilled and fails when it publishes the port"
)
VARIABLE_TWICE = (
    "a variable fills in a port that is already exposed: Nosana skips literals when it looks "
    "for duplicates, then cannot publish one port twice"
)
STATUS = (
    "a health check expecting a status no HTTP server sends (a fraction, not 100-599) never passes"
)
REPO = "not a Hugging Face repo id (org/name): the download fails when the op starts"
REVISION = "an empty revision names no branch, tag or commit: the download fails"
FILES_EMPTY = (
    "`files: []` says 'no file', but Nosana's S3 helper reads it as 'every file'; the daemon "
    "refuses the contradiction (leave `files` out for every file)"
)
ESCAPES = "a path with '..' would leave the resource or the mount point: refused for safety"
TARGET = "a mount target must be an absolute path: Docker refuses a relative one"
S3_NOWHERE = (
    "an S3 resource with neither `url` nor `buckets`: Nosana's node has nowhere to fetch from "
    "and fails when the op starts"
)
S3_BOTH = "`url` with `buckets`: Nosana's node uses `url` and silently ignores `buckets`"
S3_NO_BUCKET = "`buckets: []`: there is nothing to fetch, so nothing to mount"
EMPTY = "an empty string where something must be fetched or run: the op fails when it starts"
MODEL = "not an Ollama model (name, name:tag, namespace/name:tag): the pull fails"
TRIES = "a number of restarts is a whole number, not negative: Docker refuses the others"
NO_SUCH_OP = "`depends_on` names no op of the job: the op could never start"
ITSELF = "an op that depends on itself could never start"
CYCLE = "ops that wait for each other (by `depends_on` and the order of groups) could never start"
NO_SUCH_VOLUME = (
    "mounts a volume that no container/create-volume op of the job makes: Docker would mount a "
    "new empty volume of that name instead, hiding the typo"
)
DEST = "a volume's mount point must be an absolute path: Docker refuses a relative one"
ARGS_SHAPE = (
    "Nosana picks the args' shape by their keys (`image` or `name`), not by the op's `type`: "
    "this op's args are of the other type, so it could not do what its type says"
)
WORK_DIR = "a working directory must be an absolute path: Docker refuses a relative one"
MOUNT_PLACE = (
    "a mount at / (Docker: 'destination can't be /'), at /proc or under it (runc refuses), "
    "at /sys or under it, or at /dev itself (the container's sysfs and device nodes hidden): "
    "Nosana's node fails the op when it creates the container, or runs it without them"
)
NUL = "a NUL character in a path or an environment variable: the container cannot be created"
ENV_NAME = (
    "an environment variable's name that is empty, or holds '=' or a NUL: Docker passes "
    "`NAME=value` and splits it at the first '=', so `PATH=/tmp` would set PATH (replacing "
    "the image's), and an empty name or a NUL fails when the container is created"
)
TOO_MANY_OPS = (
    "a job of more than 1,000 ops (the daemon's bound job.ops; Nosana's templates have one): "
    "refused before it is validated, so that no job costs the daemon more than a bounded one"
)
_ARGS = "ops[0].args"
_RESOURCE = f"{_ARGS}.resources[0]"
_CHECK = f"{_ARGS}.expose[0].health_checks[0].expected_status"

DELIBERATE: dict[str, Deliberate] = {
    "literal/cmd-item/missing-variable": Deliberate(f"{_ARGS}.cmd[1]", MISSING_VARIABLE),
    "literal/model/missing-variable": Deliberate(f"{_RESOURCE}.model", MISSING_VARIABLE),
    "literal/global-image/missing-variable": Deliberate("global.image", MISSING_VARIABLE),
    "top/variable-in-cmd": Deliberate(f"{_ARGS}.cmd", MISSING_VARIABLE),
    "expose/port-0": Deliberate(f"{_ARGS}.expose", NOT_A_PORT),
    "expose/port-negative": Deliberate(f"{_ARGS}.expose", NOT_A_PORT),
    "expose/port-65536": Deliberate(f"{_ARGS}.expose", NOT_A_PORT),
    "expose/port-fraction": Deliberate(f"{_ARGS}.expose", NOT_A_PORT),
    "expose/variable-not-a-port": Deliberate(f"{_ARGS}.expose", VARIABLE_PORT),
    "expose/variable-duplicate-port": Deliberate(f"{_ARGS}.expose[1]", VARIABLE_TWICE),
    "health-check/status-fraction": Deliberate(_CHECK, STATUS),
    "health-check/status-not-http": Deliberate(_CHECK, STATUS),
    "resource/hf-bad-repo": Deliberate(f"{_RESOURCE}.repo", REPO),
    "resource/hf-empty-revision": Deliberate(f"{_RESOURCE}.revision", REVISION),
    "resource/hf-files-empty": Deliberate(f"{_RESOURCE}.files", FILES_EMPTY),
    "resource/hf-files-escape": Deliberate(f"{_RESOURCE}.files[0]", ESCAPES),
    "resource/target-relative": Deliberate(f"{_RESOURCE}.target", TARGET),
    "resource/target-escapes": Deliberate(f"{_RESOURCE}.target", ESCAPES),
    "resource/s3-no-url": Deliberate(_RESOURCE, S3_NOWHERE),
    "resource/s3-bucket-without-url": Deliberate(_RESOURCE, S3_NOWHERE),
    "resource/s3-buckets-and-url": Deliberate(_RESOURCE, S3_BOTH),
    "resource/s3-buckets-empty": Deliberate(f"{_RESOURCE}.buckets", S3_NO_BUCKET),
    "resource/s3-empty-url": Deliberate(f"{_RESOURCE}.url", EMPTY),
    "resource/s3-iam-empty-region": Deliberate(f"{_RESOURCE}.IAM.REGION", EMPTY),
    "resource/ollama-empty-model": Deliberate(f"{_RESOURCE}.model", MODEL),
    "resource/ollama-bad-model": Deliberate(f"{_RESOURCE}.model", MODEL),
    "ops/image-empty": Deliberate(f"{_ARGS}.image", EMPTY),
    "restart-policy/object-tries-fraction": Deliberate(
        f"{_ARGS}.restart_policy.restart_tries", TRIES
    ),
    "restart-policy/object-tries-negative": Deliberate(
        f"{_ARGS}.restart_policy.restart_tries", TRIES
    ),
    "execution/depends-on-unknown-op": Deliberate("ops[1].execution.depends_on[0]", NO_SUCH_OP),
    "execution/depends-on-itself": Deliberate("ops[0].execution.depends_on[0]", ITSELF),
    "execution/depends-on-cycle": Deliberate("ops", CYCLE),
    "execution/depends-on-earlier-group": Deliberate("ops", CYCLE),
    "ops/mount-unknown-volume": Deliberate(f"{_ARGS}.volumes[0].name", NO_SUCH_VOLUME),
    "ops/mount-relative-dest": Deliberate("ops[1].args.volumes[0].dest", DEST),
    "ops/volume-op-with-run-args": Deliberate(f"{_ARGS}.name", ARGS_SHAPE),
    "ops/run-op-with-volume-args": Deliberate(f"{_ARGS}.image", ARGS_SHAPE),
    "top/global-work-dir-relative": Deliberate("global.work_dir", WORK_DIR),
    "container/target-root": Deliberate(f"{_RESOURCE}.target", MOUNT_PLACE),
    "container/target-proc": Deliberate(f"{_RESOURCE}.target", MOUNT_PLACE),
    "container/target-under-sys": Deliberate(f"{_RESOURCE}.target", MOUNT_PLACE),
    "container/target-dev": Deliberate(f"{_RESOURCE}.target", MOUNT_PLACE),
    "container/target-nul": Deliberate(f"{_RESOURCE}.target", NUL),
    "container/ollama-target-proc": Deliberate(f"{_RESOURCE}.target", MOUNT_PLACE),
    "container/dest-root": Deliberate("ops[1].args.volumes[0].dest", MOUNT_PLACE),
    "container/dest-under-proc": Deliberate("ops[1].args.volumes[0].dest", MOUNT_PLACE),
    "container/env-name-empty": Deliberate(f'{_ARGS}.env[""]', ENV_NAME),
    "container/env-name-with-equals": Deliberate(f'{_ARGS}.env["PATH=/tmp"]', ENV_NAME),
    "container/env-name-nul": Deliberate(f'{_ARGS}.env["A\\u0000"]', ENV_NAME),
    "container/env-value-nul": Deliberate(f"{_ARGS}.env.A", NUL),
    "container/global-env-name-with-equals": Deliberate('global.env["A=B"]', ENV_NAME),
    "container/too-many-ops": Deliberate("ops", TOO_MANY_OPS),
}
