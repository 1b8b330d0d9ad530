package platform

import (
	"errors"
	"fmt"

	"github.com/spine-platform/spine/internal/store"
)

// Kind says what sort of failure an Error is, so the API can pick a status
// code without knowing the rules.
type Kind int

// Kinds of Error.
const (
	Invalid      Kind = iota + 1 // the request itself is wrong; fix it and retry
	NotFound                     // no such object in the caller's project
	Conflict                     // a name is taken (by this or another project)
	InUse                        // other objects still depend on this one
	Unauthorized                 // missing or wrong credentials
	Unavailable                  // the store cannot be reached; retry later
	Quota                        // a limit of the project would be passed
	Forbidden                    // the credentials are valid but may not do this
)

// Error is a failure with a stable machine-readable Code and a Message that
// tells a user what happened and what to do.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Err     error // the cause, if any; never shown to users
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

func invalid(code, msg string) error { return &Error{Kind: Invalid, Code: code, Message: msg} }

// fromStore turns a store error into an Error with a user-facing message.
// what names the object, for example `service "api"`.
func fromStore(err error, what string) error {
	var pe *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return err
	case errors.As(err, new(*store.QuotaError)):
		var qe *store.QuotaError
		errors.As(err, &qe)
		return &Error{Kind: Quota, Code: "quota_exceeded", Err: err, Message: fmt.Sprintf(
			"the project's limit of %d %s is reached (it has %d); remove some first, or ask the operator to raise the limit (spine quota set)",
			qe.Max, qe.Limit, qe.Used)}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Kind: NotFound, Code: "not_found", Message: what + " does not exist in this project", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Error{Kind: Conflict, Code: "conflict", Message: conflictMessage(err, what), Err: err}
	case errors.Is(err, store.ErrInUse):
		return &Error{Kind: InUse, Code: "in_use", Message: fmt.Sprintf("%s is still in use: %v", what, err), Err: err}
	case errors.Is(err, store.ErrUnavailable):
		return &Error{Kind: Unavailable, Code: "store_unavailable", Message: "the store cannot be reached right now; nothing was changed, retry in a moment", Err: err}
	default:
		return &Error{Kind: Unavailable, Code: "internal", Message: "internal error while handling " + what + "; nothing was changed", Err: err}
	}
}

func conflictMessage(err error, what string) string {
	// The store names the taken value (for example `hostname "a.b" is already taken`).
	msg := err.Error()
	if msg == store.ErrConflict.Error() {
		return what + " already exists"
	}
	return msg
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
