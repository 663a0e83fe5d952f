package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ferrymta/ferry/internal/auth"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// checkReferencedFiles opens and parses every file cfg refers to, with the
// loaders "ferry serve" uses, and returns one *config.Error per problem,
// at the line of the key naming the file (file is the configuration
// file's name, lineOf the line of a key path, see config.KeyLines). When
// every file is fine it also builds what serve builds from the
// configuration (listeners, routes, delivery), so check-config fails
// wherever serve would.
func checkReferencedFiles(cfg config.Config, file string, lineOf func(string) int) []error {
	var errs []error
	bad := func(path string, err error) {
		errs = append(errs, &config.Error{File: file, Line: lineOf(path), Key: config.KeyName(path), Msg: err.Error()})
	}
	for i, l := range cfg.Listeners {
		p := fmt.Sprintf("listener[%d].", i)
		if l.TLSCert != "" && l.TLSKey != "" {
			certErr, keyErr := checkReadable(l.TLSCert), checkReadable(l.TLSKey)
			if certErr != nil {
				bad(p+"tls_cert", certErr)
			}
			if keyErr != nil {
				bad(p+"tls_key", keyErr)
			}
			if certErr == nil && keyErr == nil {
				if _, err := smtpd.NewCertStore(l.TLSCert, l.TLSKey); err != nil {
					bad(p+"tls_cert", fmt.Errorf("loading %s with tls_key %s: %w", l.TLSCert, l.TLSKey, err))
				}
			}
		}
		if l.AuthUsersFile != "" {
			if _, err := auth.OpenFile(l.AuthUsersFile); err != nil {
				bad(p+"auth_users_file", err)
			}
		}
		if err := checkDir(l.TranscriptDir); err != nil {
			bad(p+"transcript_dir", err)
		}
	}
	if f := cfg.Delivery.TLSCAFile; f != "" {
		if _, err := loadCAFile(f); err != nil {
			bad("delivery.tls_ca_file", err)
		}
	}
	for i, r := range cfg.Routes {
		if r.AuthPasswordFile == "" {
			continue
		}
		p := fmt.Sprintf("route[%d].auth_password_file", i)
		if b, err := os.ReadFile(r.AuthPasswordFile); err != nil {
			bad(p, fmt.Errorf("reading the password: %w", err))
		} else if len(b) == 0 {
			bad(p, fmt.Errorf("%s is empty", r.AuthPasswordFile))
		}
	}
	if err := checkDir(cfg.Transcripts.Dir); err != nil {
		bad("transcripts.dir", err)
	}
	if f := cfg.Log.File; f != "" {
		if err := checkDir(filepath.Dir(f)); err != nil {
			bad("log.file", fmt.Errorf("its directory: %w", err))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return checkWiring(cfg, file)
}

// checkWiring builds the listeners' settings, the routing table and the
// delivery settings as serve does, returning serve's errors.
func checkWiring(cfg config.Config, file string) []error {
	var errs []error
	wrap := func(err error) { errs = append(errs, fmt.Errorf("%s: %w", file, err)) }
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, l := range cfg.Listeners {
		if _, _, err := smtpdConfig(cfg, l, discard); err != nil {
			wrap(err)
		}
	}
	table, err := buildRoutes(cfg, nil)
	if err != nil {
		wrap(err)
		return errs
	}
	if _, err := deliverConfig(cfg, table, discard); err != nil {
		wrap(err)
	}
	return errs
}

// checkReadable opens path for reading.
func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkDir reports a path that exists but is no directory; a missing
// directory is fine (serve creates it), as is "".
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
