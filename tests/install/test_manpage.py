"""warden(1) is written by hand (man/warden.1.in); this test keeps it and
`warden --help` from drifting apart: every option, subcommand, default and
variable of --help is documented in the page, every option and subcommand the
page documents exists in --help, the page's version is the binary's, and groff
renders it without a warning."""

import os
import re
import shlex
import shutil
import subprocess
import unittest

from support import BUILD_DIR, WARDEN_BIN, run

MANPAGE = os.path.join(BUILD_DIR, "man", "warden.1")
OPTION = re.compile(r"(?<![\w$/-])(--?[A-Za-z][\w-]*)")
ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}


def plain(text):
    """roff escapes to plain text."""
    text = re.sub(r"\\f[BIRP]|\\f\[[A-Z]*\]", "", text)
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def parse_manpage(path):
    """{section: [(tag, body)]} for .TP entries, and {section: text}."""
    sections, entries, current, pending_tag = {}, {}, None, False
    with open(path) as f:
        lines = f.read().splitlines()
    for raw in lines:
        if raw.startswith(".\\\""):
            continue
        text = raw
        if raw.startswith("."):
            macro, _, args = raw[1:].partition(" ")
            if macro == "SH":
                current = plain(args.strip('"'))
                sections[current], entries[current] = "", []
                continue
            if macro == "TP":
                pending_tag = True
                continue
            if macro in ALTERNATING:
                text = "".join(shlex.split(args.replace("\\", "\\\\"), posix=True))
                text = text.replace("\\\\", "\\")
            elif macro in ("B", "I"):
                text = " ".join(shlex.split(args.replace("\\", "\\\\"))).replace("\\\\", "\\")
            else:
                text = args if macro == "TH" else ""
        text = plain(text)
        if current is None:
            continue
        if pending_tag:
            entries[current].append([text, ""])
            pending_tag = False
        elif entries[current]:
            entries[current][-1][1] += " " + text
        sections[current] += " " + text
    return sections, entries, lines


class ManPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.help = run([WARDEN_BIN, "--help"])
        cls.sections, cls.entries, cls.lines = parse_manpage(MANPAGE)
        usage, _, rest = cls.help.partition("\noptions:\n")
        cls.usage, cls.options_text = usage, rest.split("\n\n")[0]
        cls.subcommands = re.findall(r"^(?:usage:)?\s+warden ([a-z][\w-]*)", usage, re.M)

    def test_the_page_has_the_binarys_version(self):
        version = run([WARDEN_BIN, "--version"]).split()[1]
        th = [l for l in self.lines if l.startswith(".TH ")][0]
        self.assertIn('"warden %s"' % version, th)

    def test_every_option_of_help_has_an_entry_with_its_default(self):
        tags = {o: body for tag, body in self.entries["OPTIONS"] for o in OPTION.findall(tag)}
        for line in self.options_text.splitlines():
            found = OPTION.findall(line.split("  ")[1] if line.startswith("  ") else line)
            self.assertTrue(found, line)
            for option in found:
                self.assertTrue(option in tags, "warden --help has %s; man/warden.1.in's "
                                "OPTIONS has no entry for it" % option)
            default = re.search(r"\(default ([^)]*)\)", line)
            if default:
                self.assertIn("default " + default.group(1), tags[found[0]],
                              "%s: the default in --help is not the man page's" % found[0])

    def test_every_option_in_the_page_exists(self):
        documented = set()
        for section in ("SYNOPSIS", "OPTIONS", "COMMANDS"):
            documented.update(OPTION.findall(self.sections[section]))
        documented.discard("--")
        for option in documented:
            self.assertRegex(self.help, r"(?<![\w-])%s(?![\w-])" % re.escape(option),
                             "man page documents %s, which warden --help does not have" % option)

    def test_subcommands_match(self):
        self.assertTrue(self.subcommands)
        commands = {tag.split()[0]: tag for tag, _ in self.entries["COMMANDS"]}
        self.assertEqual(sorted(commands), sorted(self.subcommands))
        synopsis = self.sections["SYNOPSIS"]
        for line in self.usage.splitlines():
            m = re.match(r"^(?:usage:)?\s+warden ([a-z][\w-]*)(.*)$", line)
            if not m:
                continue
            name, args = m.group(1), m.group(2).split("  ")[0]
            self.assertIn("warden " + name, synopsis)
            for option in OPTION.findall(args):
                self.assertIn(option, OPTION.findall(commands[name]), "%s %s" % (name, option))

    def test_every_variable_of_help_is_in_environment(self):
        documented = {tag.strip() for tag, _ in self.entries["ENVIRONMENT"]}
        variables = set(re.findall(r"\$?\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b", self.help))
        self.assertTrue(variables)
        self.assertEqual(variables - documented, set())

    def test_groff_renders_it_without_warnings(self):
        groff = shutil.which("groff")
        if not groff:
            self.skipTest("groff is not installed")
        p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", MANPAGE],
                           stderr=subprocess.PIPE, universal_newlines=True,
                           env=dict(os.environ, LC_ALL="C.UTF-8"))
        self.assertEqual((p.returncode, p.stderr), (0, ""))


if __name__ == "__main__":
    unittest.main()
