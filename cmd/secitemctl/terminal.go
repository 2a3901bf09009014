package main

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// terminal reads a secret without echo.
type terminal interface {
	ReadPassword(prompt string) ([]byte, error)
}

// ttyTerminal prompts on the controlling terminal (/dev/tty), so prompts
// never mix with a command's output and work when stdin is redirected.
type ttyTerminal struct{}

func (ttyTerminal) ReadPassword(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("no terminal: %v", err)
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return b, err
}
