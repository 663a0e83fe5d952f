package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/ferrymta/ferry/internal/access"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/route"
)

// relay is what a running "ferry serve" can change without a restart: the
// routing table, the relay rules, the transcript settings, the log level,
// and the listeners' certificates and user files.
type relay struct {
	env    relayEnv
	logger *slog.Logger
	// started is the configuration the process started with: a reload
	// that changes one of its restart-only settings says so each time,
	// until the restart.
	started     config.Config
	agent       *deliver.Agent
	access      *accessPolicy
	transcripts *transcriptSwitch
	reloaders   []reloader
	// dkimKeys are the DKIM keys in force; a reload reads them again.
	dkimKeys *dkim.Keys
}

// reload reads the configuration file again (SIGHUP). Everything is built
// and checked before anything changes: a file with errors, or settings that
// cannot be built (an unreadable auth_password_file, a transcript
// directory that cannot be created), are logged, every error with its
// file:line, and the configuration in force stays. A good file is applied
// without closing any connection: routes for the next deliveries, relay
// rules for the next commands, transcript settings and the log level for
// what follows; certificates and user files are read again. Settings that
// need a restart are logged as such. The command line's flags override the
// file as at start. Without --config only certificates and user files are
// read again.
func (r *relay) reload() error {
	f := r.env.flags
	if f.configFile == "" {
		r.logger.Info("SIGHUP: no configuration file (--config); reloading certificates and user files")
		reloadFiles(r.reloaders, r.logger)
		return nil
	}
	r.logger.Info("SIGHUP: reloading configuration", "file", f.configFile)
	cfg, err := r.prepare(f)
	if err != nil {
		for _, e := range splitErrors(err) {
			r.logger.Error("reload refused; keeping the configuration in force", "file", f.configFile, "err", e.Error())
		}
		return err
	}
	for _, what := range restartChanges(r.started, cfg.cfg) {
		r.logger.Warn("needs a restart: "+what+" changed", "file", f.configFile, "setting", what)
	}
	r.agent.SetRoutes(cfg.routes)
	if r.dkimKeys != nil {
		r.dkimKeys.Set(cfg.dkimKeys)
		r.logger.Info("DKIM keys reloaded", "keys", cfg.dkimKeys.Len())
	}
	if r.access.changed(cfg.accessConfig) {
		r.access.set(cfg.accessConfig, cfg.accessRules)
		r.logger.Info("relay rules reloaded")
	}
	r.transcripts.apply(cfg.transcripts)
	reloadFiles(r.reloaders, r.logger)
	r.logger.Info("configuration reloaded", "file", f.configFile, "routes", len(cfg.cfg.Routes)+len(f.routes), "level", cfg.level.String())
	if r.env.level != nil {
		r.env.level.Set(cfg.level) // last, so that the lines above are logged at the old level
	}
	return nil
}

// splitErrors returns the errors joined in err (config.Load joins one per
// problem), or err alone.
func splitErrors(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}

// restartChanges names the settings that differ between the running
// configuration and cfg and that only a restart applies.
func restartChanges(running, cfg config.Config) []string {
	var out []string
	add := func(changed bool, what string) {
		if changed {
			out = append(out, what)
		}
	}
	add(running.Hostname != cfg.Hostname, "hostname")
	if len(running.Listeners) != len(cfg.Listeners) {
		add(true, "the number of listeners")
	} else {
		for i, a := range running.Listeners {
			b := cfg.Listeners[i]
			for _, k := range listenerChanges(a, b) {
				add(true, "listener "+a.Address+" "+k)
			}
		}
	}
	add(running.Limits != cfg.Limits, "[limits]")
	add(running.Timeouts != cfg.Timeouts, "[timeouts]")
	add(running.Queue != cfg.Queue, "[queue]")
	rd, cd := running.Delivery, cfg.Delivery
	rd.Smarthost, rd.SmarthostHops, cd.Smarthost, cd.SmarthostHops = "", nil, "", nil
	add(!reflect.DeepEqual(rd, cd), "[delivery] (other than smarthost)")
	add(running.Log.Format != cfg.Log.Format, "log.format")
	add(running.Log.File != cfg.Log.File, "log.file")
	add(running.Admin != cfg.Admin, "[admin]")
	add(running.DSN != cfg.DSN, "[dsn]")
	add(len(running.DKIM.Keys) == 0 && len(cfg.DKIM.Keys) > 0, "[[dkim.key]] (signing was off at start)")
	add(running.DKIM.Resolver != cfg.DKIM.Resolver || running.DKIM.AuthServID != cfg.DKIM.AuthServID || running.DKIM.ARCKey != cfg.DKIM.ARCKey, "[dkim] resolver, authserv_id or arc_key")
	return out
}

// listenerChanges names the keys of a listener that differ; all but
// transcript_dir need a restart.
func listenerChanges(a, b config.Listener) []string {
	var out []string
	add := func(changed bool, key string) {
		if changed {
			out = append(out, key)
		}
	}
	add(a.Address != b.Address, "address")
	add(!slices.Equal(a.Keywords, b.Keywords), "keywords")
	add(a.MaxMessageSize != b.MaxMessageSize, "max_message_size")
	add(a.MaxRecipients != b.MaxRecipients, "max_recipients")
	add(a.BareNewline != b.BareNewline, "bare_newline")
	add(a.TLSCert != b.TLSCert, "tls_cert")
	add(a.TLSKey != b.TLSKey, "tls_key")
	add(a.RequireTLS != b.RequireTLS, "require_tls")
	add(a.ImplicitTLS != b.ImplicitTLS, "implicit_tls")
	add(a.AuthUsersFile != b.AuthUsersFile, "auth_users_file")
	add(a.AllowInsecureAuth != b.AllowInsecureAuth, "allow_insecure_auth")
	return out
}

// reloadFiles reads every listener's certificate and user file again (on
// SIGHUP) and logs each outcome. A file that fails is reported and the one
// in force is kept.
func reloadFiles(rs []reloader, logger *slog.Logger) {
	for _, r := range rs {
		if err := r.reload(); err != nil {
			logger.Error("reload failed; keeping the "+r.what+" in force", "listener", r.listener, "file", r.file, "err", err)
			continue
		}
		logger.Info("reloaded "+r.what+" for listener "+r.listener, "listener", r.listener, "file", r.file)
	}
}

// prepared is a new configuration with everything a reload applies built
// from it.
type prepared struct {
	cfg          config.Config
	routes       *route.Table
	accessConfig access.Config
	accessRules  *access.Policy
	transcripts  *transcriptState
	level        slog.Level
	dkimKeys     *dkim.Keyring
}

// prepare loads the file, applies the flags and builds what reload
// applies; nothing in force changes.
func (r *relay) prepare(f serveFlags) (*prepared, error) {
	cfg, err := loadServeConfig(f)
	if err != nil {
		return nil, err
	}
	p := &prepared{cfg: cfg}
	if p.routes, err = buildRoutes(cfg, f.routes); err != nil {
		return nil, err
	}
	if p.accessConfig, p.accessRules, err = newAccessRules(cfg, f); err != nil {
		return nil, err
	}
	if p.transcripts, err = transcriptStateOf(cfg); err != nil {
		return nil, err
	}
	if p.dkimKeys, err = loadKeyring(cfg); err != nil {
		return nil, err
	}
	if err := p.level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", cfg.Log.Level, err)
	}
	return p, nil
}
