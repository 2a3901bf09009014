package query

import (
	"slices"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// Access-group names with a meaning of their own.
const (
	// AnyGroup in a caller's list lets it see every access group.
	AnyGroup = "*"
	// TokenGroup is readable but never writable (apple-reference.md e).
	TokenGroup = "com.apple.token"
)

// ResolveAccess applies a caller's ordered access-group list to the plan
// (apple-reference.md e): a caller with no groups, or one naming a group
// outside its list, gets MissingEntitlement (-34018); an Add without agrp
// goes into the first writable group; queries see only the caller's
// groups unless the list holds "*".
func (p *Plan) ResolveAccess(groups []string) error {
	if len(groups) == 0 {
		return status.New(status.MissingEntitlement, "the caller has no access groups")
	}
	list := groups
	if p.Op != Search {
		list = Writable(groups)
		if len(list) == 0 {
			return status.New(status.MissingEntitlement, "the caller has no writable access group")
		}
	}
	anyGroup := slices.Contains(list, AnyGroup)
	if v, ok := p.Fields.Get("agrp"); ok {
		if err := allowed(list, v.Str, p.Op); err != nil {
			return err
		}
	} else if p.Op == Add {
		def := DefaultGroup(list)
		if def == "" {
			return status.New(status.MissingEntitlement, "the caller has no access group to add items to")
		}
		p.Fields = p.Fields.Set(p.Class.Attr("agrp"), schema.String(def))
	}
	if anyGroup {
		p.Groups = nil
	} else {
		p.Groups = list
	}
	return nil
}

// CheckNewGroup checks the agrp an Update wants to move items to.
func CheckNewGroup(groups []string, group string) error {
	return allowed(Writable(groups), group, Update)
}

func allowed(list []string, group string, op Op) error {
	if (group == AnyGroup || group == TokenGroup) && (op == Add || op == Update) {
		return status.New(status.MissingEntitlement, "%q is not an access group items can be stored in", group)
	}
	if slices.Contains(list, group) || slices.Contains(list, AnyGroup) {
		return nil
	}
	return status.New(status.MissingEntitlement, "access group %q is not in this caller's list", group)
}

// Writable returns groups without the read-only token group.
func Writable(groups []string) []string {
	if !slices.Contains(groups, TokenGroup) {
		return groups
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g != TokenGroup {
			out = append(out, g)
		}
	}
	return out
}

// DefaultGroup returns the group a new item without agrp goes into: the
// first group of the list that is not "*".
func DefaultGroup(list []string) string {
	for _, g := range list {
		if g != AnyGroup && g != TokenGroup {
			return g
		}
	}
	return ""
}
