package deliver

import "github.com/ferrymta/ferry/internal/route"

// SetRoutes puts a new routing table in force (a configuration reload):
// leases that start from now on use it; deliveries in progress finish with
// the table they started with. A nil table is ignored.
func (a *Agent) SetRoutes(t *route.Table) {
	if t != nil {
		a.routes.Store(t)
	}
}

// Routes returns the routing table in force.
func (a *Agent) Routes() *route.Table { return a.routes.Load() }
