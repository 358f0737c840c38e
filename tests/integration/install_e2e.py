"""make install into a DESTDIR, as a packager runs it, and what it installed:

- the tree (binaries, policies, web pages, config, unit, sysusers, tmpfiles, udev
  rules, man pages) with PREFIX=/usr, the paths substituted everywhere, no -Werror
  and the packager's CPPFLAGS/CFLAGS/LDFLAGS used;
- the installed config valid (rmad --check-config on the installed layout);
- the unit through systemd-analyze verify and security (score <= 3.0), the sysusers
  and tmpfiles entries through systemd-sysusers/systemd-tmpfiles --root (skipped,
  saying so, where systemd is not installed: scripts/deps.sh installs it);
- the three man pages rendered by man -l without a warning, naming every config key
  and rmactl command;
- the udev rules giving the rmad group every scanner of docs/scanners.md;
- a second install keeping an edited config; uninstall removing the rest.

Runs make in its own build directory (never the one under test), with the
environment of a packager: no MAKEFLAGS from the make check that runs it.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []
REPO = os.getcwd()


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def run(argv, env=None, **kw):
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, **kw)


def packager_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "WERROR",
                        "SANITIZE", "RMAD_BUILD")}
    return env


def read(path):
    with open(path) as f:
        return f.read()


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-install-")
    dest = os.path.join(tmp, "dest")
    bdir = os.path.join(tmp, "build")
    flags = ["CPPFLAGS=-DRMAD_PACKAGER_CPPFLAGS", "CFLAGS=-O1 -g -DRMAD_PACKAGER_CFLAGS",
             "LDFLAGS=-Wl,-z,relro"]
    make = ["make", "-s", "-j2", "B=" + bdir, "PREFIX=/usr", "DESTDIR=" + dest] + flags
    r = run(make + ["install"], env=packager_env())
    if not check(r.returncode == 0, "make install: exit 0\n" + r.stdout + r.stderr):
        return
    stamp = read(os.path.join(bdir, "cflags.stamp"))
    check("-Werror" not in stamp, "a packager's build has no -Werror: " + stamp)
    for f in ("-DRMAD_PACKAGER_CPPFLAGS", "-DRMAD_PACKAGER_CFLAGS", "-O1", "-Wl,-z,relro"):
        check(f in stamp, "the packager's flag %s is used" % f)

    # The tree.
    unitdir = run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"]).stdout.strip() \
        or "/lib/systemd/system"
    sysusersdir = run(["pkg-config", "--variable=sysusersdir", "systemd"]).stdout.strip() \
        or "/usr/lib/sysusers.d"
    tmpfilesdir = run(["pkg-config", "--variable=tmpfilesdir", "systemd"]).stdout.strip() \
        or "/usr/lib/tmpfiles.d"
    udevdir = run(["pkg-config", "--variable=udevdir", "udev"]).stdout.strip() or "/lib/udev"
    policies = sorted(p for p in os.listdir("policies") if p.endswith(".yaml"))
    web = sorted(p for p in os.listdir("web") if re.search(r"\.(html|css|js)$", p))
    want = {
        "/usr/bin/rmad": 0o755, "/usr/bin/rmactl": 0o755,
        "/etc/rmad/rmad.conf": 0o644,
        unitdir + "/rmad.service": 0o644,
        sysusersdir + "/rmad.conf": 0o644,
        tmpfilesdir + "/rmad.conf": 0o644,
        udevdir + "/rules.d/70-rmad-scanners.rules": 0o644,
        "/usr/share/man/man8/rmad.8": 0o644,
        "/usr/share/man/man1/rmactl.1": 0o644,
        "/usr/share/man/man5/rmad.conf.5": 0o644,
    }
    want.update({"/usr/share/rmad/policies/" + p: 0o644 for p in policies})
    want.update({"/usr/share/rmad/web/" + p: 0o644 for p in web})
    got = set()
    for root, dirs, files in os.walk(dest):
        for f in files:
            got.add(os.path.join(root, f)[len(dest):])
    check(got == set(want), "installed files: missing %s, unexpected %s"
          % (sorted(set(want) - got), sorted(got - set(want))))
    for path, mode in want.items():
        if path in got:
            m = os.stat(dest + path).st_mode & 0o7777
            check(m == mode, "%s: mode %o, want %o" % (path, m, mode))
    check(os.path.isdir(dest + "/etc/rmad/policies"), "the local policy directory exists")
    for path in got:
        if path.startswith("/usr/bin/"):
            continue
        text = open(dest + path, errors="replace").read()
        check(not re.search(r"@[A-Z_]+@", text), path + ": no @PLACEHOLDER@ left")
        check("/usr/local" not in text, path + ": no /usr/local path with PREFIX=/usr")

    unit = read(dest + unitdir + "/rmad.service")
    check("ExecStart=/usr/bin/rmad --config /etc/rmad/rmad.conf\n" in unit, "ExecStart path")
    check("ExecStartPre=/usr/bin/rmad --check-config /etc/rmad/rmad.conf\n" in unit,
          "ExecStartPre path")
    for line in ("Type=notify", "User=rmad", "Group=rmad", "StateDirectory=rmad",
                 "RuntimeDirectory=rmad"):
        check(re.search("^" + line + "$", unit, re.M), "unit: " + line)
    check(re.search(r"^WatchdogSec=\d+", unit, re.M), "unit: WatchdogSec=")
    check("DynamicUser" not in unit, "unit: no DynamicUser (the udev group needs a real user)")

    conf = read(dest + "/etc/rmad/rmad.conf")
    for key, value in (("database", "/var/lib/rmad/rmad.db"),
                       ("policies", "/usr/share/rmad/policies"),
                       ("local_policies", "/etc/rmad/policies"),
                       ("control", "ipc:///run/rmad/rmad.ctl"),
                       ("web_root", "/usr/share/rmad/web")):
        check(re.search(r"^%s\s*=\s*%s(\s|$)" % (key, re.escape(value)), conf, re.M),
              "rmad.conf: %s = %s" % (key, value))

    rmad = dest + "/usr/bin/rmad"
    version = read("VERSION").strip()
    for prog in ("rmad", "rmactl"):
        r = run([dest + "/usr/bin/" + prog, "--version"])
        check(r.returncode == 0 and r.stdout.startswith("%s %s" % (prog, version)),
              "%s --version: %r" % (prog, r.stdout))

    # The installed config, on the installed files: valid.
    live = os.path.join(tmp, "live")
    os.makedirs(live + "/var/lib/rmad")
    os.makedirs(live + "/run/rmad")
    lconf = conf.replace("/var/lib/rmad", live + "/var/lib/rmad") \
                .replace("/run/rmad", live + "/run/rmad") \
                .replace("/usr/share/rmad", dest + "/usr/share/rmad") \
                .replace("/etc/rmad/policies", dest + "/etc/rmad/policies")
    with open(os.path.join(tmp, "live.conf"), "w") as f:
        f.write(lconf)
    r = run([rmad, "--check-config", os.path.join(tmp, "live.conf")])
    check(r.returncode == 0, "rmad --check-config on the installed config: " + r.stderr)

    check_doc_links()
    check_man(dest)
    check_udev(dest + udevdir + "/rules.d/70-rmad-scanners.rules")
    check_systemd(tmp, dest, unitdir, sysusersdir, tmpfilesdir)

    # Upgrade: an edited config is kept, the new default lands beside it.
    with open(dest + "/etc/rmad/rmad.conf", "a") as f:
        f.write("; edited by the admin\n")
    r = run(make + ["install"], env=packager_env())
    check(r.returncode == 0, "second make install: " + r.stderr)
    check(read(dest + "/etc/rmad/rmad.conf").endswith("; edited by the admin\n"),
          "a second install keeps the edited config")
    check(os.path.exists(dest + "/etc/rmad/rmad.conf.dist"), "and installs rmad.conf.dist")
    check("rmad.conf.dist" in r.stdout, "and says so: " + r.stdout)

    r = run(make + ["uninstall"], env=packager_env())
    check(r.returncode == 0, "make uninstall: " + r.stderr)
    left = []
    for root, dirs, files in os.walk(dest):
        left += [os.path.join(root, f)[len(dest):] for f in files]
    check(left == ["/etc/rmad/rmad.conf"], "uninstall leaves only the edited config: %s" % left)
    shutil.rmtree(tmp)


def check_doc_links():
    """The README and docs cite only files of the repository (no spec/, seeds/, ../shared)."""
    docs = ["README.md"] + [os.path.join(r, f) for r, _, fs in os.walk("docs") for f in fs
                            if f.endswith(".md")]
    for doc in docs:
        text = read(doc)
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(doc), target))
            check(os.path.exists(path), "%s links to %s, which is not in the repository"
                  % (doc, target))
        for bad in ("../shared", "/work/shared", "seeds/"):
            check(bad not in text, "%s cites %s" % (doc, bad))


def check_man(dest):
    """man -l renders each page without a warning; they name every key and command."""
    pages = {}
    for page in ("man8/rmad.8", "man1/rmactl.1", "man5/rmad.conf.5"):
        path = dest + "/usr/share/man/" + page
        r = run(["man", "-l", "--warnings", "-E", "UTF-8", "-Tutf8", path],
                env=dict(os.environ, MAN_KEEP_FORMATTING="1", MANWIDTH="100"))
        check(r.returncode == 0 and r.stderr.strip() == "",
              "man -l %s: exit %d, warnings: %s" % (page, r.returncode, r.stderr))
        check(len(r.stdout) > 2000, "man -l %s renders a page (%d bytes)" % (page, len(r.stdout)))
        plain = run(["man", "-l", "-E", "UTF-8", "-Tutf8", path],
                    env=dict(os.environ, MANWIDTH="100")).stdout
        pages[page] = re.sub(r".\x08", "", plain)
    # Every [daemon] and station key the parser knows, and every scanner option.
    src = read("core/config.c")
    keys = re.findall(r'\[K_[A-Z_]+\] = \{ "([a-z_]+)"', src)
    keys += re.findall(r'\[SK_[A-Z_]+\] = "([a-z_]+)"', src)
    keys += re.findall(r'\[FK_[A-Z_]+\] = "([a-z_]+)"', src)
    keys += re.findall(r'^\s*\{ "([a-z_]+)", OPT_', src, re.M)
    check(len(keys) > 20, "config keys found in core/config.c: %d" % len(keys))
    for k in keys:
        check(re.search(r"\b%s\b" % k, pages["man5/rmad.conf.5"]), "rmad.conf(5) documents " + k)
    # Every rmactl command of its --help.
    cmds = set(re.findall(r"^  ([a-z]+)", run(["build/rmactl", "--help"]).stdout, re.M)) \
        if os.path.exists("build/rmactl") else set()
    cmds |= set(re.findall(r'\{ "([a-z]+)", "  ', read("cli/rmactl.c")))
    for c in sorted(cmds):
        check(re.search(r"\b%s\b" % c, pages["man1/rmactl.1"]), "rmactl(1) documents " + c)
    for opt in ("--config", "--check-config", "--default-config", "--print-default-config",
                "--version", "--help"):
        check(opt in pages["man8/rmad.8"], "rmad(8) documents " + opt)


def check_udev(path):
    """Every scanner of docs/scanners.md's table, and the test fixtures', gets the group."""
    rules = read(path)
    usb = set(re.findall(r'^ATTR\{idVendor\}=="([0-9a-f]{4})", ATTR\{idProduct\}=="([0-9a-f]{4})"',
                         rules, re.M))
    tty = set(re.findall(r'^ATTRS\{idVendor\}=="([0-9a-f]{4})", ATTRS\{idProduct\}=="([0-9a-f]{4})"',
                         rules, re.M))
    doc = read("docs/scanners.md")
    table = doc[doc.index("## Supported scanners"):]
    table = table[:table.index("\n## ", 4)] if "\n## " in table[4:] else table
    listed = re.findall(r"^\| *([^|]+?) *\| *`([0-9a-f]{4}):([0-9a-f]{4})` *\| *(usb|serial) *\|",
                        table, re.M)
    check(len(listed) >= 10, "docs/scanners.md lists the supported scanners (%d)" % len(listed))
    for name, vid, pid, kind in listed:
        check((vid, pid) in (usb if kind == "usb" else tty),
              "udev rules give %s %s:%s (%s) to rmad" % (name, vid, pid, kind))
    check({(v, p) for _, v, p, k in listed if k == "usb"} == usb and
          {(v, p) for _, v, p, k in listed if k == "serial"} == tty,
          "the rules list exactly docs/scanners.md's table")
    for vid_pid in (("0c2e", "0b61"), ("05e0", "1200")):  # tests/test_usb.c's scanners
        check(vid_pid in usb, "udev rules cover the tested scanner %s:%s" % vid_pid)
    check('GROUP="rmad", MODE="0660"' in rules, "rules: group rmad, mode 0660")
    check('SYMLINK+="rmad-scanner-' in rules, "rules: /dev/rmad-scanner-* links")
    # Every line is a comment, blank, or KEY op "value" pairs separated by ", ".
    pair = r'[A-Z_]+(\{[A-Za-z_]+\})?(==|!=|=|\+=)"[^"]*"'
    for n, line in enumerate(rules.splitlines(), 1):
        if line.strip() == "" or line.startswith("#"):
            continue
        check(re.fullmatch(r"%s(, %s)*" % (pair, pair), line),
              "%s:%d: a udev rule line: %s" % (path, n, line))
    labels = set(re.findall(r'^LABEL="([a-z_]+)"', rules, re.M))
    for g in re.findall(r'GOTO="([a-z_]+)"', rules):
        check(g in labels, "GOTO %s has its LABEL" % g)


def check_systemd(tmp, dest, unitdir, sysusersdir, tmpfilesdir):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("install e2e: skipped systemd-analyze verify/security, systemd-sysusers and"
              " systemd-tmpfiles: systemd is not installed (scripts/deps.sh --check installs it)")
        return
    unit = dest + unitdir + "/rmad.service"
    # verify checks the unit against a root: the installed tree, plus what the unit
    # uses from the system (/bin/kill, systemd's own targets), as a package would find.
    root = os.path.join(tmp, "verify-root")
    shutil.copytree(dest, root, symlinks=True)
    os.makedirs(root + "/bin", exist_ok=True)
    shutil.copy2(os.path.realpath("/bin/kill"), root + "/bin/kill")
    host_units = os.path.realpath(unitdir)
    if os.path.isdir(host_units):
        shutil.copytree(host_units, root + "/usr/lib/systemd/system", symlinks=True,
                        dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if n.startswith("rmad")])
    env = dict(os.environ, MANPATH=dest + "/usr/share/man", SYSTEMD_LOG_COLOR="0",
               SYSTEMD_PAGER="")
    r = run([analyze, "verify", "--root=" + root, "rmad.service"], env=env)
    check(r.returncode == 0 and r.stderr.strip() == "",
          "systemd-analyze verify: exit %d: %s" % (r.returncode, r.stderr))
    # And the unit really is checked: a broken copy fails.
    with open(root + unitdir + "/rmad.service", "w") as f:
        f.write(read(unit).replace("ExecStart=/usr/bin/rmad", "ExecStart=/usr/bin/rmad-missing"))
    r = run([analyze, "verify", "--root=" + root, "rmad.service"], env=env)
    check(r.returncode != 0 and "rmad-missing" in r.stderr,
          "systemd-analyze verify catches a missing ExecStart binary: " + r.stderr)

    r = run([analyze, "security", "--offline=true", "--no-pager", unit], env=env)
    m = re.search(r"Overall exposure level for rmad\.service: (\d+\.\d+) (\w+)", r.stdout)
    if check(m, "systemd-analyze security: a score: " + r.stdout[-300:] + r.stderr):
        score = float(m.group(1))
        print("install e2e: systemd-analyze security --offline=true: %s %s"
              % (m.group(1), m.group(2)))
        check(score <= 3.0, "security exposure %.1f <= 3.0" % score)

    sysroot = os.path.join(tmp, "sysroot")
    os.makedirs(sysroot + "/etc")
    r = run(["systemd-sysusers", "--root=" + sysroot, dest + sysusersdir + "/rmad.conf"])
    check(r.returncode == 0, "systemd-sysusers: " + r.stderr)
    passwd = read(sysroot + "/etc/passwd")
    group = read(sysroot + "/etc/group")
    m = re.search(r"^rmad:x:(\d+):(\d+):[^:]*:/var/lib/rmad:", passwd, re.M)
    g = re.search(r"^rmad:x:(\d+):", group, re.M)
    check(m and g and m.group(2) == g.group(1), "sysusers: user rmad in group rmad")
    r = run(["systemd-tmpfiles", "--root=" + sysroot, "--create",
             dest + tmpfilesdir + "/rmad.conf"])
    check(r.returncode == 0, "systemd-tmpfiles --create: " + r.stderr)
    for d, mode in (("/var/lib/rmad", 0o750), ("/run/rmad", 0o750), ("/etc/rmad/policies", 0o755)):
        st = os.stat(sysroot + d) if os.path.isdir(sysroot + d) else None
        check(st and st.st_mode & 0o7777 == mode, "tmpfiles makes %s mode %o" % (d, mode))
        if st and d != "/etc/rmad/policies" and m:
            check(st.st_uid == int(m.group(1)), "%s belongs to rmad" % d)


if __name__ == "__main__":
    main()
    if failures:
        print("install e2e: %d failures" % len(failures))
        sys.exit(1)
    print("install e2e: all checks passed")
