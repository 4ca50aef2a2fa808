package chat

import "github.com/prometheus/client_golang/prometheus"

type chatMetrics struct {
	framesIn, framesOut prometheus.Counter
	logins, kicks       prometheus.Counter
	refused, spoofed    prometheus.Counter
	reaped, badFrames   prometheus.Counter
	slowConsumers       prometheus.Counter
	rejected, unknown   prometheus.Counter
	texts               prometheus.Counter
}

func newChatMetrics(reg prometheus.Registerer, conns func() float64) *chatMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "imsrv_chat_" + name, Help: help})
	}
	m := &chatMetrics{
		framesIn:      c("frames_in_total", "Frames read from clients."),
		framesOut:     c("frames_out_total", "Frames written to clients."),
		logins:        c("logins_total", "Successful chat logins."),
		kicks:         c("kicks_total", "Sessions replaced by a newer login of the same user."),
		refused:       c("refused_total", "Requests refused: failed logins, requests before login, texts to non-friends."),
		spoofed:       c("spoofed_total", "Requests naming another user as the sender."),
		reaped:        c("reaped_total", "Connections closed for missing heartbeats."),
		badFrames:     c("bad_frames_total", "Connections closed for malformed or oversized frames."),
		slowConsumers: c("slow_consumers_total", "Connections dropped because their send queue filled."),
		rejected:      c("rejected_total", "Connections refused at the connection limit."),
		unknown:       c("unknown_frames_total", "Frames with unknown message ids (ignored)."),
		texts:         c("texts_total", "Text items accepted (1017)."),
	}
	if reg != nil {
		reg.MustRegister(m.framesIn, m.framesOut, m.logins, m.kicks, m.refused, m.spoofed, m.reaped,
			m.badFrames, m.slowConsumers, m.rejected, m.unknown, m.texts,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imsrv_chat_connections", Help: "Open client connections."}, conns))
	}
	return m
}
